package dev.tokenmeter.sink.upstream;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.sink.upstream.OrganizationUsageClient.Result;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.math.BigDecimal;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import org.jooq.DSLContext;
import org.jooq.Record;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reconciliation with OpenAI's own bill (issue 16, ADR 0086). Each run reads the organization Usage API
 * (completions, embeddings and the media endpoints {@link #MEDIA_SOURCES}, daily buckets, by model) and the Costs API (daily, by line item) for the last
 * {@code rereadDays} UTC days up to now, replaces those days' rows in {@code upstream_usage_bucket} /
 * {@code upstream_cost_bucket} (one transaction per day, so a re-read is idempotent), marks them read, then checks
 * the {@code upstream_reconciliation} view: a day and model whose difference exceeds the tolerance is reported to
 * the {@link DifferenceListener} (an alert on {@code usage-alerts}) and counted in
 * {@code sink_upstream_differences_total}; the gauge {@code sink_upstream_cost_difference_nano_usd} holds the sum
 * of the absolute cost differences of the days just checked.
 */
public final class UpstreamReconciler {

    private static final Logger log = LoggerFactory.getLogger(UpstreamReconciler.class);
    private static final long DAY_S = 86_400;
    /**
     * The Usage API's media endpoints (V36) and the field each counts instead of tokens ({@code null}: moderations,
     * whose {@code input_tokens} are stored as such). Their cost line items come with the Costs API's others.
     */
    static final Map<String, String> MEDIA_SOURCES = orderedMap("images", "images", "audio_speeches", "characters",
            "audio_transcriptions", "seconds", "moderations", null);

    /** A day and model beyond tolerance: one row of {@code upstream_reconciliation}. */
    public record Difference(LocalDate day, String model, long oursRequests, long upstreamRequests,
                             long inputTokensDifference, long cachedInputTokensDifference, long outputTokensDifference,
                             long oursCostNanoUsd, long upstreamCostNanoUsd) {
        public long requestsDifference() {
            return upstreamRequests - oursRequests;
        }

        public long costDifferenceNanoUsd() {
            return upstreamCostNanoUsd - oursCostNanoUsd;
        }
    }

    /** Told of every difference beyond tolerance, once per run it is seen in. */
    public interface DifferenceListener {
        void beyondTolerance(Difference difference, Instant checkedAt);
    }

    /** Absolute tolerances per day and model; a difference strictly greater than one of them is reported. */
    public record Tolerance(long requests, long tokens, long costNanoUsd) {
    }

    private final DSLContext db;
    private final OrganizationUsageClient client;
    private final int rereadDays;
    private final Tolerance tolerance;
    private final boolean checkOpenDay;
    private final DifferenceListener listener;
    private final Counter differences;
    private final Counter amountsRounded;
    private final AtomicLong lastCostDifference = new AtomicLong();

    public UpstreamReconciler(DSLContext db, OrganizationUsageClient client, int rereadDays, Tolerance tolerance,
                              boolean checkOpenDay, DifferenceListener listener, MeterRegistry registry) {
        this.db = db;
        this.client = client;
        this.rereadDays = rereadDays;
        this.tolerance = tolerance;
        this.checkOpenDay = checkOpenDay;
        this.listener = listener;
        this.differences = Counter.builder("sink_upstream_differences")
                .description("Days x models whose upstream reconciliation differed beyond tolerance, per run").register(registry);
        this.amountsRounded = Counter.builder("sink_upstream_amounts_rounded")
                .description("Upstream cost amounts with digits past the 9th decimal (float noise), rounded half-even to nano-USD").register(registry);
        Gauge.builder("sink_upstream_cost_difference_nano_usd", lastCostDifference, AtomicLong::get)
                .description("Sum of |upstream - ours| cost over the days and models checked by the last run").register(registry);
    }

    /** Reads, stores and checks; returns the differences beyond tolerance. Throws when a read or a write fails. */
    public List<Difference> run(Instant now) {
        long nowS = now.getEpochSecond();
        LocalDate today = LocalDate.ofInstant(now, ZoneOffset.UTC);
        LocalDate first = today.minusDays(rereadDays);
        long startS = first.toEpochDay() * DAY_S;
        long endS = nowS + 1;
        List<Result> completions = client.readAll("/v1/organization/usage/completions", startS, endS, "group_by=model");
        List<Result> embeddings = client.readAll("/v1/organization/usage/embeddings", startS, endS, "group_by=model");
        Map<String, List<Result>> media = new java.util.LinkedHashMap<>();
        for (String source : MEDIA_SOURCES.keySet()) {
            media.put(source, client.readAll("/v1/organization/usage/" + source, startS, endS, "group_by=model"));
        }
        List<Result> costs = client.readAll("/v1/organization/costs", startS, endS, "group_by=line_item");

        Map<LocalDate, List<Object[]>> usageRows = new TreeMap<>();
        Map<LocalDate, List<Object[]>> costRows = new TreeMap<>();
        for (LocalDate d = first; !d.isAfter(today); d = d.plusDays(1)) {
            usageRows.put(d, new ArrayList<>());
            costRows.put(d, new ArrayList<>());
        }
        addUsage(usageRows, "completions", completions);
        addUsage(usageRows, "embeddings", embeddings);
        media.forEach((source, results) -> addMediaUsage(usageRows, source, results));
        int rounded = 0;
        BigDecimal largestAdjustment = BigDecimal.ZERO;
        for (Result r : costs) {
            LocalDate day = day(r.bucketStartEpochS());
            JsonNode amount = r.result().path("amount");
            String currency = amount.path("currency").asText("usd");
            if (!currency.equalsIgnoreCase("usd")) {
                throw new IllegalArgumentException("costs " + day + ": currency " + bounded(currency, 10) + " is not usd");
            }
            JsonNode value = amount.path("value");
            String text = value.isNumber() ? value.decimalValue().toPlainString() : value.asText(null);
            String lineItem = bounded(r.result().path("line_item").asText(""), 300);
            UsdAmounts.NanoUsd amountNano = UsdAmounts.toNanoUsd(text, "costs " + day + " line item '" + lineItem + "'");
            long nano = amountNano.nanoUsd();
            if (amountNano.rounded()) {
                rounded++;
                largestAdjustment = largestAdjustment.max(amountNano.adjustmentNanoUsd().abs());
            }
            int comma = lineItem.lastIndexOf(", ");
            String model = comma < 0 ? lineItem : lineItem.substring(0, comma);
            costRows.computeIfAbsent(day, k -> new ArrayList<>())
                    .add(new Object[] {day, lineItem, project(r.result()), bounded(model, 200), nano});
        }
        if (rounded > 0) {
            amountsRounded.increment(rounded);
            log.info("upstream reconciliation: {} cost amounts carried digits past the 9th decimal (binary-float noise);"
                    + " rounded half-even to whole nano-USD, largest adjustment {} nano-USD", rounded, largestAdjustment.toPlainString());
        }
        for (LocalDate day : usageRows.keySet()) {
            List<Object[]> usage = usageRows.get(day);
            List<Object[]> cost = costRows.getOrDefault(day, List.of());
            db.transaction(tx -> {
                DSLContext t = tx.dsl();
                t.execute("DELETE FROM upstream_usage_bucket WHERE day = ?", day);
                t.execute("DELETE FROM upstream_cost_bucket WHERE day = ?", day);
                if (!usage.isEmpty()) {
                    var batch = t.batch("INSERT INTO upstream_usage_bucket (source, day, model, project_id, requests, input_tokens,"
                            + " cached_input_tokens, output_tokens, units) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                            + " ON CONFLICT (source, day, model, project_id) DO UPDATE SET requests = upstream_usage_bucket.requests + EXCLUDED.requests,"
                            + " input_tokens = upstream_usage_bucket.input_tokens + EXCLUDED.input_tokens,"
                            + " cached_input_tokens = upstream_usage_bucket.cached_input_tokens + EXCLUDED.cached_input_tokens,"
                            + " output_tokens = upstream_usage_bucket.output_tokens + EXCLUDED.output_tokens,"
                            + " units = upstream_usage_bucket.units + EXCLUDED.units, read_at = now()");
                    usage.forEach(row -> batch.bind(row));
                    batch.execute();
                }
                if (!cost.isEmpty()) {
                    var batch = t.batch("INSERT INTO upstream_cost_bucket (day, line_item, project_id, model, cost_nano_usd)"
                            + " VALUES (?, ?, ?, ?, ?) ON CONFLICT (day, line_item, project_id) DO UPDATE"
                            + " SET cost_nano_usd = upstream_cost_bucket.cost_nano_usd + EXCLUDED.cost_nano_usd, read_at = now()");
                    cost.forEach(row -> batch.bind(row));
                    batch.execute();
                }
                t.execute("INSERT INTO upstream_read_day (day) VALUES (?) ON CONFLICT (day) DO UPDATE SET read_at = now()", day);
            });
        }
        return check(first, checkOpenDay ? today : today.minusDays(1), now);
    }

    private List<Difference> check(LocalDate from, LocalDate to, Instant now) {
        List<Difference> out = new ArrayList<>();
        long absCost = 0;
        for (Record r : db.fetch("SELECT * FROM upstream_reconciliation WHERE day BETWEEN ? AND ? ORDER BY day, model", from, to)) {
            Difference d = new Difference(r.get("day", LocalDate.class), r.get("model", String.class),
                    r.get("ours_requests", Long.class), r.get("upstream_requests", Long.class),
                    r.get("input_tokens_difference", Long.class), r.get("cached_input_tokens_difference", Long.class),
                    r.get("output_tokens_difference", Long.class), r.get("ours_cost_nano_usd", Long.class),
                    r.get("upstream_cost_nano_usd", Long.class));
            absCost += Math.abs(d.costDifferenceNanoUsd());
            if (Math.abs(d.requestsDifference()) > tolerance.requests()
                    || Math.abs(d.inputTokensDifference()) > tolerance.tokens()
                    || Math.abs(d.cachedInputTokensDifference()) > tolerance.tokens()
                    || Math.abs(d.outputTokensDifference()) > tolerance.tokens()
                    || Math.abs(d.costDifferenceNanoUsd()) > tolerance.costNanoUsd()) {
                out.add(d);
            }
        }
        lastCostDifference.set(absCost);
        for (Difference d : out) {
            differences.increment();
            log.warn("upstream reconciliation: {} {} differs beyond tolerance: requests {} (ours {}), cost {} nano-USD (ours {})",
                    d.day(), d.model(), d.upstreamRequests(), d.oursRequests(), d.upstreamCostNanoUsd(), d.oursCostNanoUsd());
            listener.beyondTolerance(d, now);
        }
        return out;
    }

    private static void addUsage(Map<LocalDate, List<Object[]>> rows, String source, List<Result> results) {
        for (Result r : results) {
            LocalDate day = day(r.bucketStartEpochS());
            JsonNode n = r.result();
            rows.computeIfAbsent(day, k -> new ArrayList<>()).add(new Object[] {source, day,
                    bounded(n.path("model").asText(""), 200), project(n), count(n, "num_model_requests", day),
                    count(n, "input_tokens", day), count(n, "input_cached_tokens", day), count(n, "output_tokens", day), 0L});
        }
    }

    /** A media endpoint's results: requests and its own quantity (units); a moderation's input tokens as tokens. */
    private static void addMediaUsage(Map<LocalDate, List<Object[]>> rows, String source, List<Result> results) {
        String unitField = MEDIA_SOURCES.get(source);
        for (Result r : results) {
            LocalDate day = day(r.bucketStartEpochS());
            JsonNode n = r.result();
            rows.computeIfAbsent(day, k -> new ArrayList<>()).add(new Object[] {source, day,
                    bounded(n.path("model").asText(""), 200), project(n), count(n, "num_model_requests", day),
                    unitField == null ? count(n, "input_tokens", day) : 0L, 0L, 0L,
                    unitField == null ? 0L : count(n, unitField, day)});
        }
    }

    private static Map<String, String> orderedMap(String... keysAndValues) {
        Map<String, String> m = new java.util.LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            m.put(keysAndValues[i], keysAndValues[i + 1]);
        }
        return java.util.Collections.unmodifiableMap(m);
    }

    private static LocalDate day(long epochS) {
        return LocalDate.ofEpochDay(Math.floorDiv(epochS, DAY_S));
    }

    private static String project(JsonNode n) {
        return bounded(n.path("project_id").asText(""), 200);
    }

    private static long count(JsonNode n, String field, LocalDate day) {
        JsonNode v = n.path(field);
        if (v.isMissingNode() || v.isNull()) {
            return 0;
        }
        if (!v.canConvertToExactIntegral() || v.asLong() < 0) {
            throw new IllegalArgumentException("usage " + day + ": " + field + " is not a non-negative integer");
        }
        return v.asLong();
    }

    private static String bounded(String s, int max) {
        if (s.length() > max) {
            throw new IllegalArgumentException("upstream value longer than " + max + " chars: " + s.substring(0, 40) + "...");
        }
        return s;
    }
}
