package dev.tokenmeter.edge.dashboard;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.edge.admin.AdminToken;
import dev.tokenmeter.edge.http.HttpErrors;
import dev.tokenmeter.edge.http.MonthParam;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.events.topic.Topics;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import io.javalin.http.Handler;
import org.apache.kafka.common.TopicPartition;
import org.jooq.DSLContext;
import org.jooq.Record;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.YearMonth;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * The dashboard (issue 17, ADR 0082): a static page (HTML, JS, CSS from this jar's {@code /dashboard/} resources)
 * that reads only the usage API and the two read-only routes below, with the token in an Authorization header.
 *
 * <pre>
 * GET /admin/dashboard            the operators' page (admin listener); GET /dashboard the same page on the public
 *                                 listener, where it shows only the key holder's own usage (GET /v1/usage)
 * GET /admin/pipeline?month=      reconciliation status of the month (default: the current UTC month), dead letters
 *                                 of the billing sink, the notifier and the aggregator (its dead-letter topic), the billing sink's lag per consumer group
 *                                 and the aggregator's on usage-events
 * GET /admin/alerts?limit=        the newest usage alerts (1..100, default 20), one per alert id
 * </pre>
 *
 * <p>The page's assets carry a strict Content-Security-Policy (scripts and styles from this origin only, requests to
 * this origin only, no frames, no forms, no referrer), so an injected value can neither run nor send the token away.
 */
public final class DashboardApi implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(DashboardApi.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self';"
            + " base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    static final int MAX_ALERTS = 100;
    static final int MAX_MISMATCHES = 20;
    private static final Map<String, String> ASSETS = Map.of(
            "index.html", "text/html; charset=utf-8",
            "dashboard.js", "text/javascript; charset=utf-8",
            "dashboard.css", "text/css; charset=utf-8");

    private final AdminToken token;
    private final DSLContext db;
    private final Topics topics;
    private final KafkaPeek kafka;
    private final Clock clock;
    /** The aggregator's consumer group (its APPLICATION_ID); blank: its lag is not shown. */
    private final String aggregatorGroup;
    private final Map<String, byte[]> assets = new LinkedHashMap<>();

    /** @param token null: the admin routes are off (the public page still serves the user view) */
    public DashboardApi(AdminToken token, DSLContext db, KafkaClientSettings kafka, Topics topics, String aggregatorGroup,
                        Clock clock) {
        this.aggregatorGroup = aggregatorGroup == null ? "" : aggregatorGroup;
        this.token = token;
        this.db = Objects.requireNonNull(db);
        this.topics = Objects.requireNonNull(topics);
        this.kafka = new KafkaPeek(kafka, topics.alerts());
        this.clock = clock;
        ASSETS.keySet().forEach(name -> assets.put(name, resource(name)));
    }

    private static byte[] resource(String name) {
        try (InputStream in = DashboardApi.class.getResourceAsStream("/dashboard/" + name)) {
            if (in == null) {
                throw new IllegalStateException("the jar has no /dashboard/" + name);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The public listener: the page in its user view. */
    public void routes(RoutesConfig r) {
        r.get("/dashboard", ctx -> asset(ctx, "index.html"));
        r.get("/dashboard/{asset}", ctx -> asset(ctx, ctx.pathParam("asset")));
    }

    /** The admin listener: the page, its two data routes. */
    public void adminRoutes(RoutesConfig r) {
        if (token == null) {
            return;
        }
        r.get("/admin/dashboard", ctx -> asset(ctx, "index.html"));
        r.get("/admin/dashboard/{asset}", ctx -> asset(ctx, ctx.pathParam("asset")));
        r.get("/admin/pipeline", guarded(this::pipeline));
        r.get("/admin/alerts", guarded(this::alerts));
    }

    private void asset(Context ctx, String name) {
        byte[] body = assets.get(name);
        if (body == null) {
            HttpErrors.respond(ctx, new OpenAiError(404, "Invalid URL (GET " + ctx.path() + ")", "invalid_request_error",
                    null, null, false, null));
            return;
        }
        ctx.header("Content-Security-Policy", CSP)
                .header("Referrer-Policy", "no-referrer")
                .header("X-Content-Type-Options", "nosniff")
                .header("X-Frame-Options", "DENY")
                .header("Cache-Control", "no-store")
                .contentType(ASSETS.get(name)).result(body);
    }

    private Handler guarded(Handler h) {
        return ctx -> {
            if (!token.matches(ctx.header("Authorization"))) {
                HttpErrors.respond(ctx, OpenAiError.invalidApiKey("The admin API needs 'Authorization: Bearer <ADMIN_TOKEN>'."));
                return;
            }
            ctx.header("Cache-Control", "no-store");
            h.handle(ctx);
        };
    }

    private void pipeline(Context ctx) {
        YearMonth month = MonthParam.parseOrRespond(ctx, clock);
        if (month == null) {
            return;
        }
        ObjectNode n = JSON.createObjectNode();
        n.put("object", "pipeline.status");
        n.put("month", month.toString());
        reconciliation(n.putObject("reconciliation"), month);
        ObjectNode dead = n.putObject("dead_letters");
        deadLetters(dead.putObject("billing_sink"), "SELECT count(*), max(received_at) FROM sink_dead_letter");
        deadLetters(dead.putObject("alert_notifier"), "SELECT count(*), max(created_at) FROM webhook_dead_letter");
        ObjectNode dlq = dead.putObject("aggregator");
        dlq.put("topic", topics.deadLetter().name());
        try {
            dlq.put("count", kafka.recordCount(topics.deadLetter().name()));
        } catch (RuntimeException e) {
            LOG.warn("dashboard: the aggregator's dead-letter topic could not be described: {}", e.toString());
            dlq.putNull("count");
            dlq.put("error", "Kafka did not answer (" + e.getClass().getSimpleName() + ").");
        }
        ArrayNode lag = n.putArray("consumer_lag");
        lag(lag);
        if (!aggregatorGroup.isBlank()) {
            aggregatorLag(lag.addObject());
        }
        ctx.status(200).contentType("application/json").result(n.toString());
    }

    /** Per user of the month: the ledger against the monthly and the hourly totals (view {@code reconciliation}). */
    private void reconciliation(ObjectNode out, YearMonth month) {
        String diff = "(monthly_minus_ledger_events <> 0 OR hourly_minus_ledger_events <> 0 OR monthly_minus_ledger_tokens <> 0"
                + " OR hourly_minus_ledger_tokens <> 0 OR monthly_minus_ledger_cost_nano_usd <> 0 OR hourly_minus_ledger_cost_nano_usd <> 0)";
        Record sums = db.fetchOne("SELECT count(*), count(*) FILTER (WHERE " + diff + "), coalesce(sum(ledger_events), 0),"
                + " coalesce(sum(ledger_cost_nano_usd), 0) FROM reconciliation WHERE billing_month = ?", month.atDay(1));
        long users = sums.get(0, Long.class);
        long mismatched = sums.get(1, Long.class);
        long ledgerCost = sums.get(3, BigDecimal.class).longValueExact();
        out.put("status", mismatched == 0 ? "reconciled" : "differences");
        out.put("users", users);
        out.put("users_with_differences", mismatched);
        out.put("ledger_events", sums.get(2, BigDecimal.class).longValueExact());
        out.put("ledger_cost_nano_usd", ledgerCost);
        out.put("ledger_cost_usd", Money.formatUsd(ledgerCost));
        ArrayNode rows = out.putArray("differences");
        for (Record r : db.fetch("SELECT user_id, ledger_events, monthly_minus_ledger_events, hourly_minus_ledger_events,"
                + " monthly_minus_ledger_cost_nano_usd, hourly_minus_ledger_cost_nano_usd FROM reconciliation"
                + " WHERE billing_month = ? AND " + diff + " ORDER BY user_id LIMIT " + MAX_MISMATCHES, month.atDay(1))) {
            ObjectNode o = rows.addObject();
            o.put("user_id", r.get(0, String.class));
            o.put("ledger_events", r.get(1, BigDecimal.class).longValueExact());
            o.put("monthly_minus_ledger_events", r.get(2, BigDecimal.class).longValueExact());
            o.put("hourly_minus_ledger_events", r.get(3, BigDecimal.class).longValueExact());
            long monthlyCost = r.get(4, BigDecimal.class).longValueExact();
            long hourlyCost = r.get(5, BigDecimal.class).longValueExact();
            o.put("monthly_minus_ledger_cost_usd", Money.formatUsd(monthlyCost));
            o.put("hourly_minus_ledger_cost_usd", Money.formatUsd(hourlyCost));
        }
    }

    private void deadLetters(ObjectNode out, String sql) {
        Record r = db.fetchOne(sql);
        out.put("count", r.get(0, Long.class));
        OffsetDateTime latest = r.get(1, OffsetDateTime.class);
        out.put("latest_at", latest == null ? null : latest.toInstant().toString());
    }

    /**
     * The billing sink's lag: per consumer group, the topics' end offsets minus the offsets it stored with its
     * writes ({@code sink_offset}, the truth it resumes from; a partition it has not written yet counts from 0).
     */
    private void lag(ArrayNode out) {
        List<String> ours = List.of(topics.usageEvents().name(), topics.hourlyTotals().name(), topics.monthlyTotals().name(),
                topics.finalTotals().name(), topics.rollups().name());
        Map<String, Map<TopicPartition, Long>> stored = new LinkedHashMap<>();
        Map<String, OffsetDateTime> lastWrite = new LinkedHashMap<>();
        for (Record r : db.fetch("SELECT consumer_group, topic, kafka_partition, next_offset, updated_at FROM sink_offset"
                + " WHERE topic = ANY(?) ORDER BY consumer_group, topic, kafka_partition", (Object) ours.toArray(String[]::new))) {
            String group = r.get(0, String.class);
            stored.computeIfAbsent(group, g -> new LinkedHashMap<>())
                    .put(new TopicPartition(r.get(1, String.class), r.get(2, Integer.class)), r.get(3, Long.class));
            OffsetDateTime at = r.get(4, OffsetDateTime.class);
            lastWrite.merge(group, at, (a, b) -> a.isAfter(b) ? a : b);
        }
        stored.forEach((group, offsets) -> {
            ObjectNode g = out.addObject();
            g.put("consumer_group", group);
            g.put("topics", String.join(",", offsets.keySet().stream().map(TopicPartition::topic).distinct().toList()));
            g.put("last_write_at", lastWrite.get(group).toInstant().toString());
            putLag(g, "the end offsets", () -> offsets);
        });
    }

    /**
     * The aggregator's lag on usage-events: the end offsets minus the offsets its group committed (with its
     * transactions, exactly_once_v2); a partition it has not committed yet counts from the partition's beginning.
     */
    private void aggregatorLag(ObjectNode g) {
        g.put("consumer_group", aggregatorGroup);
        g.put("topics", topics.usageEvents().name());
        g.putNull("last_write_at");
        putLag(g, "the aggregator's offsets", () -> {
            Map<TopicPartition, Long> committed = kafka.committedOffsets(aggregatorGroup);
            List<TopicPartition> parts = kafka.partitions(topics.usageEvents().name());
            Map<TopicPartition, Long> begin = kafka.beginningOffsets(parts);
            Map<TopicPartition, Long> positions = new LinkedHashMap<>();
            for (TopicPartition tp : parts) {
                positions.put(tp, committed.getOrDefault(tp, begin.getOrDefault(tp, 0L)));
            }
            return positions;
        });
    }

    /**
     * Puts {@code lag_records}: records between these positions and the end offsets, summed; a partition whose
     * remaining offsets are only transaction markers counts 0 ({@link KafkaPeek#hasRecordBetween}). When Kafka does
     * not answer: {@code null} and an {@code error} naming {@code what} it did not answer.
     */
    private void putLag(ObjectNode g, String what, Supplier<Map<TopicPartition, Long>> positions) {
        try {
            Map<TopicPartition, Long> from = positions.get();
            Map<TopicPartition, Long> ends = kafka.endOffsets(from.keySet());
            long lag = 0;
            for (var e : from.entrySet()) {
                long end = ends.getOrDefault(e.getKey(), e.getValue());
                if (end > e.getValue() && kafka.hasRecordBetween(e.getKey(), e.getValue(), end)) {
                    lag += end - e.getValue();
                }
            }
            g.put("lag_records", lag);
        } catch (RuntimeException e) {
            LOG.warn("dashboard: {} ({}) unavailable: {}", what, g.path("consumer_group").asText(), e.toString());
            g.putNull("lag_records");
            g.put("error", "Kafka did not answer " + what + " (" + e.getClass().getSimpleName() + ").");
        }
    }

    private void alerts(Context ctx) {
        int limit = 20;
        String l = ctx.queryParam("limit");
        if (l != null) {
            try {
                limit = Integer.parseInt(l);
            } catch (NumberFormatException e) {
                limit = -1;
            }
            if (limit < 1 || limit > MAX_ALERTS) {
                HttpErrors.respond(ctx, OpenAiError.invalidRequest("'limit' must be an integer from 1 to " + MAX_ALERTS + ".", "limit"));
                return;
            }
        }
        List<UsageAlert> recent;
        try {
            recent = kafka.recentAlerts(limit);
        } catch (RuntimeException e) {
            LOG.warn("dashboard: the alerts topic could not be read: {}", e.toString());
            HttpErrors.respond(ctx, OpenAiError.unavailable("The alerts topic could not be read; try again.", Duration.ofSeconds(5)));
            return;
        }
        ObjectNode n = JSON.createObjectNode();
        n.put("object", "list");
        ArrayNode data = n.putArray("data");
        for (UsageAlert a : recent) {
            ObjectNode o = data.addObject();
            o.put("alert_id", a.getAlertId());
            o.put("kind", a.getKind()); // credit_threshold, or upstream_difference (ADR 0086)
            o.put("user_id", a.getUserId());
            o.put("tenant_id", a.getTenantId());
            o.put("billing_month", a.getBillingMonth());
            o.put("threshold_percent", a.getThresholdPercent());
            o.put("cost_usd", Money.formatUsd(a.getCostNanoUsd()));
            o.put("credit_usd", Money.formatUsd(a.getCreditNanoUsd()));
            o.put("crossed_at", a.getCrossedAt().toString());
            o.put("source", a.getSource());
        }
        ctx.status(200).contentType("application/json").result(n.toString());
    }

    @Override
    public void close() {
        kafka.close();
    }
}
