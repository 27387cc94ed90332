package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.RollupPeriod;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageRollup;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;

import java.time.YearMonth;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Attribution rollups (issue 17, ADR 0078): daily and monthly totals per (user, project, dimension, value), for the
 * operator's label keys ({@code ROLLUP_DIMENSIONS}) and the pseudo-dimension {@code (all)} (per project).
 *
 * <p><b>The cap.</b> Per user, month and dimension at most {@code ROLLUP_MAX_VALUES_PER_USER} distinct values get
 * their own rollup; an event with a value not yet seen after that counts as {@code (other)}. An event without the
 * label counts as {@code (none)}. Neither bucket uses a place of the cap.
 *
 * <p><b>Determinism.</b> The assignment of a value (its own row or {@code (other)}) is stored in the uncached
 * {@code rollup-values} store, written in the same process() call as the event's dedup marker and rollups, so the
 * changelog holds all three or none (ADR 0076). A value once admitted stays admitted for the month; an event is
 * assigned by the state it sees, which is the committed state of all events before it in its partition's order:
 * a task redone from its last commit, or restored from the changelog, replays the same events in the same order
 * over the same state and assigns every one of them as before. A duplicate is dropped by the dedup check before
 * any of this, so it is never assigned anywhere.
 *
 * <p>Each update is forwarded at once (in the same transaction) with its revision; consumers keep the highest.
 */
final class Rollups {

    static final String ALL = "(all)";
    static final String NONE = "(none)";
    static final String OTHER = "(other)";

    private final List<String> dimensions;
    private final int maxValues;
    private KeyValueStore<String, UsageRollup> rollups;
    /** {@code user|month|dimension|=value} → 1 for an admitted value; {@code user|month|dimension|#} → how many. */
    private KeyValueStore<String, Long> values;

    Rollups(List<String> dimensions, int maxValues) {
        this.dimensions = List.copyOf(dimensions);
        this.maxValues = maxValues;
    }

    boolean enabled() {
        return !dimensions.isEmpty();
    }

    void init(ProcessorContext<String, Object> context) {
        rollups = context.getStateStore(UsageAggregationTopology.STORE_ROLLUPS);
        values = context.getStateStore(UsageAggregationTopology.STORE_ROLLUP_VALUES);
    }

    /** What one event changes, computed and checked (no sum may wrap) before anything is stored. */
    record Pending(Map<String, UsageRollup> rollups, Map<String, Long> values) {
    }

    /** @throws ArithmeticException when a sum would wrap: nothing was stored, the event goes to the DLQ */
    Pending prepare(UsageEvent e) {
        Map<String, UsageRollup> changed = new LinkedHashMap<>();
        Map<String, Long> admitted = new LinkedHashMap<>();
        String project = e.getProject() == null ? "" : e.getProject();
        YearMonth month = Periods.month(e.getOccurredAt());
        long dayStart = e.getOccurredAt().truncatedTo(ChronoUnit.DAYS).toEpochMilli();
        long monthStart = Periods.monthStart(month);
        List<String[]> cells = new ArrayList<>();
        cells.add(new String[]{ALL, ALL});
        for (String dimension : dimensions) {
            cells.add(new String[]{dimension, assign(e.getUserId(), month, dimension, e.getLabels().get(dimension), admitted)});
        }
        for (String[] cell : cells) {
            add(changed, e, project, cell[0], cell[1], RollupPeriod.DAY, dayStart, dayStart + 86_400_000L);
            add(changed, e, project, cell[0], cell[1], RollupPeriod.MONTH, monthStart, Periods.monthEnd(month));
        }
        return new Pending(changed, admitted);
    }

    /** Stores the event's rollups and value assignments and forwards the rollups, after its dedup marker. */
    void apply(Pending p, ProcessorContext<String, Object> context, long timestamp) {
        p.values().forEach(values::put);
        p.rollups().forEach((key, r) -> {
            rollups.put(key, r);
            context.forward(new Record<String, Object>(key, r, timestamp), UsageAggregationTopology.SINK_ROLLUPS);
        });
    }

    /** The bucket of {@code value}: itself when admitted (or admitted now, under the cap), else (other); (none) when absent. */
    private String assign(String user, YearMonth month, String dimension, String value, Map<String, Long> admitted) {
        if (value == null) {
            return NONE;
        }
        String base = user + "|" + month + "|" + dimension + "|";
        if (values.get(base + "=" + value) != null) {
            return value;
        }
        Long count = values.get(base + "#");
        long n = count == null ? 0 : count;
        if (n >= maxValues) {
            return OTHER;
        }
        admitted.put(base + "=" + value, 1L);
        admitted.put(base + "#", n + 1);
        return value;
    }

    private void add(Map<String, UsageRollup> changed, UsageEvent e, String project, String dimension, String value,
                     RollupPeriod period, long start, long end) {
        String key = key(e.getUserId(), project, dimension, value, period, start);
        UsageRollup before = rollups.get(key);
        UsageRollup.Builder b = before == null
                ? UsageRollup.newBuilder().setUserId(e.getUserId()).setTenantId(e.getTenantId()).setProject(project)
                        .setDimension(dimension).setValue(value).setPeriod(period)
                        .setPeriodStart(java.time.Instant.ofEpochMilli(start)).setPeriodEnd(java.time.Instant.ofEpochMilli(end))
                : UsageRollup.newBuilder(before);
        changed.put(key, b.setEventCount(Math.addExact(b.getEventCount(), 1))
                .setPromptTokens(Math.addExact(b.getPromptTokens(), e.getPromptTokens()))
                .setCompletionTokens(Math.addExact(b.getCompletionTokens(), e.getCompletionTokens()))
                .setCostNanoUsd(Math.addExact(b.getCostNanoUsd(), e.getCostNanoUsd()))
                .setRevision(b.getRevision() + 1)
                .build());
    }

    /** {@code user|project|dimension|value|DAY|periodStartEpochMs}: the key of the rollups topic. */
    static String key(String user, String project, String dimension, String value, RollupPeriod period, long start) {
        return user + "|" + project + "|" + dimension + "|" + value + "|" + period + "|" + start;
    }
}
