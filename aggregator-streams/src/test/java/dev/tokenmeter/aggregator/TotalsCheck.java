package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.Granularity;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The check the aggregator's end-to-end tests end with: the newest total per key (by revision) read
 * read_committed from the totals topics, against an independent sum of the distinct events, per hour and
 * per month key, as {@code [events, cost, prompt tokens, completion tokens, failed]}.
 */
final class TotalsCheck {

    private TotalsCheck() {
    }

    /** The expected totals: each event id counted once, however often it was sent. */
    static Map<String, List<Long>> expected(Collection<UsageEvent> sent) {
        Map<String, long[]> sums = new HashMap<>();
        Set<String> seen = new HashSet<>();
        for (UsageEvent e : sent) {
            if (!seen.add(e.getEventId())) {
                continue;
            }
            long hour = Periods.hourStart(e.getOccurredAt());
            long month = Periods.monthStart(Periods.month(e.getOccurredAt()));
            for (String key : List.of(
                    UsageAggregationProcessor.totalKey(e.getUserId(), e.getModel(), e.getKeySource(), Granularity.HOUR, hour),
                    UsageAggregationProcessor.totalKey(e.getUserId(), e.getModel(), e.getKeySource(), Granularity.MONTH, month))) {
                long[] s = sums.computeIfAbsent(key, k -> new long[5]);
                s[0]++;
                s[1] += e.getCostNanoUsd();
                s[2] += e.getPromptTokens();
                s[3] += e.getCompletionTokens();
                s[4] += e.getOutcome() == Outcome.FAILED ? 1 : 0;
            }
        }
        Map<String, List<Long>> out = new HashMap<>();
        sums.forEach((k, s) -> out.put(k, List.of(s[0], s[1], s[2], s[3], s[4])));
        return out;
    }

    /** What the aggregator says, in {@link #expected}'s form. */
    static Map<String, List<Long>> summarise(Map<String, UsageTotal> latest) {
        Map<String, List<Long>> out = new HashMap<>();
        latest.forEach((k, t) -> out.put(k, List.of(t.getEventCount(), t.getCostNanoUsd(), t.getPromptTokens(),
                t.getCompletionTokens(), t.getFailedCount())));
        return out;
    }

    /** Reads what is there now into {@code latest}, keeping the highest revision per key. */
    static void poll(KafkaConsumer<String, UsageTotal> consumer, Map<String, UsageTotal> latest) {
        for (ConsumerRecord<String, UsageTotal> r : consumer.poll(Duration.ofMillis(200))) {
            latest.merge(r.key(), r.value(), (a, b) -> b.getRevision() >= a.getRevision() ? b : a);
        }
    }

    /** A read_committed consumer of the totals topics, from the beginning, in a group of its own. */
    static KafkaConsumer<String, UsageTotal> consumer(KafkaEngine kafka) {
        return new KafkaConsumer<>(kafka.clientProperties(Map.of(ConsumerConfig.GROUP_ID_CONFIG, Names.unique("totals-reader"),
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")),
                new StringDeserializer(), EventSerdes.usageTotal().deserializer());
    }
}
