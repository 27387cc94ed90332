package dev.tokenmeter.events.topic;

import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageRollup;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.UserLimit;
import dev.tokenmeter.events.serde.EventSerdes;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;

/**
 * Every topic of the pipeline, as values built from config (never mutable statics). All names share
 * a prefix so several environments can share one cluster. Keys are strings; values are Avro in
 * single-object encoding ({@link EventSerdes}).
 *
 * <table>
 *   <caption>Topics</caption>
 *   <tr><th>topic</th><th>key</th><th>value</th><th>written by</th><th>read by</th></tr>
 *   <tr><td>usage-events</td><td>user id</td><td>UsageEvent</td><td>edge, app servers</td><td>aggregator, billing-sink, analysts</td></tr>
 *   <tr><td>usage-totals-hourly</td><td>total key</td><td>UsageTotal (running)</td><td>aggregator</td><td>billing-sink, dashboards</td></tr>
 *   <tr><td>usage-totals-monthly</td><td>total key</td><td>UsageTotal (running)</td><td>aggregator</td><td>billing-sink</td></tr>
 *   <tr><td>usage-totals-final</td><td>total key</td><td>UsageTotal (isFinal)</td><td>aggregator</td><td>billing-sink (invoicing)</td></tr>
 *   <tr><td>usage-events-late</td><td>user id</td><td>UsageEvent past grace</td><td>aggregator</td><td>billing-sink (adjustments)</td></tr>
 *   <tr><td>usage-alerts</td><td>user id</td><td>UsageAlert</td><td>aggregator, edge</td><td>notifiers</td></tr>
 *   <tr><td>user-limits</td><td>user id</td><td>UserLimit (compacted)</td><td>edge admin API</td><td>aggregator</td></tr>
 *   <tr><td>usage-rollups</td><td>rollup key</td><td>UsageRollup (running)</td><td>aggregator</td><td>billing-sink</td></tr>
 *   <tr><td>usage-events-dlq</td><td>original key</td><td>original bytes, error in headers</td><td>aggregator</td><td>operators</td></tr>
 * </table>
 */
public record Topics(TopicSpec<String, UsageEvent> usageEvents,
                     TopicSpec<String, UsageTotal> hourlyTotals,
                     TopicSpec<String, UsageTotal> monthlyTotals,
                     TopicSpec<String, UsageTotal> finalTotals,
                     TopicSpec<String, UsageEvent> lateEvents,
                     TopicSpec<String, UsageAlert> alerts,
                     TopicSpec<String, UserLimit> userLimits,
                     TopicSpec<byte[], byte[]> deadLetter,
                     TopicSpec<String, UsageRollup> rollups) {

    public static final int DEFAULT_PARTITIONS = 6;
    private static final long FOREVER = -1L;
    private static final long THIRTY_DAYS_MS = Duration.ofDays(30).toMillis();

    /** Topics named {@code <prefix>usage-events} etc., created with {@code partitions} partitions. */
    public static Topics withPrefix(String prefix, int partitions) {
        Serde<String> s = Serdes.String();
        return new Topics(
                new TopicSpec<>(prefix + "usage-events", s, EventSerdes.usageEvent(), partitions, false, FOREVER),
                new TopicSpec<>(prefix + "usage-totals-hourly", s, EventSerdes.usageTotal(), partitions, false, THIRTY_DAYS_MS),
                new TopicSpec<>(prefix + "usage-totals-monthly", s, EventSerdes.usageTotal(), partitions, false, THIRTY_DAYS_MS),
                new TopicSpec<>(prefix + "usage-totals-final", s, EventSerdes.usageTotal(), partitions, false, FOREVER),
                new TopicSpec<>(prefix + "usage-events-late", s, EventSerdes.usageEvent(), partitions, false, FOREVER),
                new TopicSpec<>(prefix + "usage-alerts", s, EventSerdes.usageAlert(), partitions, false, FOREVER),
                new TopicSpec<>(prefix + "user-limits", s, EventSerdes.userLimit(), partitions, true, FOREVER),
                new TopicSpec<>(prefix + "usage-events-dlq", Serdes.ByteArray(), Serdes.ByteArray(), partitions, false, FOREVER),
                new TopicSpec<>(prefix + "usage-rollups", s, EventSerdes.usageRollup(), partitions, false, THIRTY_DAYS_MS));
    }

    /** The environment keys {@link #fromEnv} reads. */
    public static final List<String> ENV_KEYS = List.of("TOPIC_PREFIX", "TOPIC_PARTITIONS");

    /** From {@code TOPIC_PREFIX} (default empty) and {@code TOPIC_PARTITIONS} (default 6). */
    public static Topics fromEnv(Map<String, String> env) {
        String prefix = env.getOrDefault("TOPIC_PREFIX", "");
        String partitions = env.getOrDefault("TOPIC_PARTITIONS", Integer.toString(DEFAULT_PARTITIONS));
        try {
            return withPrefix(prefix, Integer.parseInt(partitions.strip()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("TOPIC_PARTITIONS must be a whole number, got '" + partitions + "'", e);
        }
    }

    public List<TopicSpec<?, ?>> all() {
        return List.of(usageEvents, hourlyTotals, monthlyTotals, finalTotals, lateEvents, alerts, userLimits, deadLetter, rollups);
    }

    /** Creates every topic that does not exist yet (explicitly, with its documented partitions and policy). */
    public void createAll(Admin admin, short replicationFactor) {
        List<NewTopic> newTopics = all().stream()
                .map(t -> new NewTopic(t.name(), t.partitions(), replicationFactor).configs(t.configs()))
                .toList();
        admin.createTopics(newTopics).values().forEach((name, future) -> {
            try {
                future.get();
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw new IllegalStateException("cannot create topic " + name + ": " + e.getCause().getMessage(), e.getCause());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while creating topic " + name, e);
            }
        });
    }
}
