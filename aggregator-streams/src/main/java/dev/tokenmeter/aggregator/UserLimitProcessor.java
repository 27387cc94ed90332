package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.UserLimit;
import dev.tokenmeter.events.serde.EventSerdes;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;

/** Keeps each user's current monthly credit from the compacted user-limits topic in a local store. */
final class UserLimitProcessor implements Processor<String, byte[], String, Object> {

    private ProcessorContext<String, Object> context;
    private KeyValueStore<String, Long> limits;

    @Override
    public void init(ProcessorContext<String, Object> context) {
        this.context = context;
        this.limits = context.getStateStore(UsageAggregationTopology.STORE_LIMITS);
    }

    @Override
    public void process(Record<String, byte[]> record) {
        if (record.key() == null) {
            DeadLetters.send(context, record, "user limit without a key");
            return;
        }
        if (record.value() == null) {
            limits.delete(record.key());
            return;
        }
        try {
            UserLimit limit = EventSerdes.userLimit().decode(record.value());
            limits.put(record.key(), limit.getMonthlyCreditNanoUsd());
        } catch (RuntimeException e) {
            DeadLetters.send(context, record, "cannot decode UserLimit: " + e.getMessage());
        }
    }
}
