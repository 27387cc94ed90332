package dev.tokenmeter.sink;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.jooq.DSLContext;

import java.util.List;

import static dev.tokenmeter.db.jooq.Tables.SINK_DEAD_LETTER;

/** A record the sink cannot bill, kept with its bytes and the reason. */
record DeadLetter(String topic, int partition, long offset, byte[] key, byte[] value, String reason) {

    static DeadLetter of(ConsumerRecord<byte[], byte[]> record, String reason) {
        return new DeadLetter(record.topic(), record.partition(), record.offset(), record.key(), record.value(),
                reason.length() > 4000 ? reason.substring(0, 4000) : reason);
    }

    /** Inserts the dead letters; a redelivered record (same topic/partition/offset) is kept once. */
    static void insert(DSLContext tx, List<DeadLetter> letters) {
        if (letters.isEmpty()) {
            return;
        }
        var insert = tx.insertInto(SINK_DEAD_LETTER, SINK_DEAD_LETTER.TOPIC, SINK_DEAD_LETTER.KAFKA_PARTITION,
                SINK_DEAD_LETTER.KAFKA_OFFSET, SINK_DEAD_LETTER.RECORD_KEY, SINK_DEAD_LETTER.RECORD_VALUE, SINK_DEAD_LETTER.REASON);
        for (DeadLetter d : letters) {
            insert = insert.values(d.topic, d.partition, d.offset, d.key, d.value, d.reason);
        }
        insert.onConflictDoNothing().execute();
    }
}
