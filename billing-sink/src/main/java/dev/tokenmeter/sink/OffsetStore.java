package dev.tokenmeter.sink;

import org.apache.kafka.common.TopicPartition;
import org.jooq.DSLContext;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;

import static dev.tokenmeter.db.jooq.Tables.SINK_OFFSET;

/** Consumer positions kept in Postgres, written in the transaction of the rows they cover. */
final class OffsetStore {

    private final String group;

    OffsetStore(String group) {
        this.group = group;
    }

    /** Next offset to read per partition; partitions never written by this group are absent. */
    Map<TopicPartition, Long> positions(DSLContext db, Collection<TopicPartition> partitions) {
        Map<TopicPartition, Long> positions = new HashMap<>();
        db.selectFrom(SINK_OFFSET).where(SINK_OFFSET.CONSUMER_GROUP.eq(group)).fetch().forEach(r -> {
            TopicPartition tp = new TopicPartition(r.getTopic(), r.getKafkaPartition());
            if (partitions.contains(tp)) {
                positions.put(tp, r.getNextOffset());
            }
        });
        return positions;
    }

    /** Records the positions after a batch; must run inside the batch's transaction. */
    void save(DSLContext tx, Map<TopicPartition, Long> nextOffsets) {
        var insert = tx.insertInto(SINK_OFFSET, SINK_OFFSET.CONSUMER_GROUP, SINK_OFFSET.TOPIC, SINK_OFFSET.KAFKA_PARTITION,
                SINK_OFFSET.NEXT_OFFSET);
        for (Map.Entry<TopicPartition, Long> e : nextOffsets.entrySet()) {
            insert = insert.values(group, e.getKey().topic(), e.getKey().partition(), e.getValue());
        }
        insert.onConflict(SINK_OFFSET.CONSUMER_GROUP, SINK_OFFSET.TOPIC, SINK_OFFSET.KAFKA_PARTITION)
                .doUpdate()
                .set(SINK_OFFSET.NEXT_OFFSET, org.jooq.impl.DSL.excluded(SINK_OFFSET.NEXT_OFFSET))
                .set(SINK_OFFSET.UPDATED_AT, org.jooq.impl.DSL.currentOffsetDateTime())
                // Never move backwards: a zombie's late commit cannot rewind a newer position.
                .where(SINK_OFFSET.NEXT_OFFSET.lt(org.jooq.impl.DSL.excluded(SINK_OFFSET.NEXT_OFFSET)))
                .execute();
    }
}
