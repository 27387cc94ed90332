package dev.tokenmeter.edge.usage;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.quota.UsageSnapshot;
import dev.tokenmeter.events.money.Money;
import org.jooq.DSLContext;
import org.jooq.Record;

import java.time.Instant;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.BiFunction;

import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_MONTHLY;

/**
 * One page of the OpenAI-shaped usage answer: the billed rows of {@link UsageSql}, plus, for a one-user query whose
 * page holds the current time, the spend the quota engine holds that Postgres has not billed yet (ADR 0079). JSON
 * ({@code object: page}) or CSV (RFC 4180, one row per bucket and group).
 */
final class UsageReport {

    static final String RESULT_OBJECT = "organization.usage.completions.result";
    static final String CSV_HEADER = "start_time,end_time,source,model,key_source,user_id,project_id,num_model_requests,"
            + "input_tokens,input_cached_tokens,output_tokens,reasoning_tokens,cost_nano_usd,cost_usd,label_key,label_value";
    /** project_id of calls whose key had no project (the rollups' empty project). */
    static final String NO_PROJECT = "(none)";
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * One result row. Group fields are null when not grouped by; cached and reasoning tokens are null on rows of the
     * attribution rollups, which do not keep them.
     */
    record Result(String source, String model, String keySource, String userId, String project, String labelValue,
                  long requests, long inputTokens, Long cachedInputTokens, long outputTokens, Long reasoningTokens,
                  long costNanoUsd) {}

    record Page(UsageQuery query, Map<Instant, List<Result>> buckets, String nextPage) {}

    private UsageReport() {}

    /**
     * @param realtime the quota engine's view of a user's month (empty when it cannot say)
     */
    static Page run(UsageQuery q, DSLContext db, BiFunction<String, YearMonth, Optional<UsageSnapshot>> realtime, Instant now) {
        List<Instant> bucketStarts = q.pageBuckets();
        Instant to = q.width().next(bucketStarts.get(bucketStarts.size() - 1));
        Map<Instant, List<Result>> buckets = new LinkedHashMap<>();
        bucketStarts.forEach(b -> buckets.put(b, new ArrayList<>()));
        UsageSql sql = UsageSql.of(q, q.pageStart(), to);
        for (Record r : db.resultQuery(sql.sql(), sql.binds().toArray()).fetch()) {
            int i = 1;
            String model = q.groupBy().contains("model") ? r.get(i++, String.class) : null;
            String keySource = q.groupBy().contains("key_source") ? r.get(i++, String.class) : null;
            String user = q.groupBy().contains("user_id") ? r.get(i++, String.class) : null;
            String project = q.groupBy().contains("project_id") ? r.get(i++, String.class) : null;
            String value = q.dimension() != null ? r.get(i++, String.class) : null;
            Result res = new Result("billed", model, keySource, user, "".equals(project) ? NO_PROJECT : project, value,
                    r.get(i, Long.class), r.get(i + 1, Long.class), r.get(i + 2, Long.class), r.get(i + 3, Long.class),
                    r.get(i + 4, Long.class), r.get(i + 5, Long.class));
            List<Result> list = buckets.get(Instant.ofEpochSecond(r.get(0, Long.class)));
            if (list != null) {
                list.add(res);
            }
        }
        Instant current = q.width().floor(now);
        if (q.userId() != null && !q.rollup() && buckets.containsKey(current)) {
            YearMonth month = YearMonth.from(now.atZone(ZoneOffset.UTC));
            Optional<UsageSnapshot> snapshot = realtime.apply(q.userId(), month);
            if (snapshot.isPresent()) {
                Map<String, Long> billed = billedMonth(db, q.userId(), month);
                String user = q.groupBy().contains("user_id") ? q.userId() : null;
                long service = snapshot.get().settledNanoUsd() - billed.getOrDefault("SERVICE_CREDIT", 0L);
                long personal = snapshot.get().personalKeyNanoUsd() - billed.getOrDefault("PERSONAL_KEY", 0L);
                if (service > 0) {
                    buckets.get(current).add(new Result("realtime", null, "SERVICE_CREDIT", user, null, null, 0, 0, 0L, 0, 0L, service));
                }
                if (personal > 0) {
                    buckets.get(current).add(new Result("realtime", null, "PERSONAL_KEY", user, null, null, 0, 0, 0L, 0, 0L, personal));
                }
            }
        }
        return new Page(q, buckets, q.nextPage(bucketStarts));
    }

    /**
     * Whether the attribution rollups hold any row of {@code dimension}: the aggregator's {@code ROLLUP_DIMENSIONS}
     * names the dimensions, and this is how the edge learns them without a second copy of that setting.
     */
    static boolean dimensionKnown(DSLContext db, String dimension) {
        return db.fetchExists(db.selectOne().from("usage_rollup_monthly").where("dimension = ?", dimension));
    }

    private static Map<String, Long> billedMonth(DSLContext db, String userId, YearMonth month) {
        Map<String, Long> out = new LinkedHashMap<>();
        var t = USAGE_TOTAL_MONTHLY;
        for (var r : db.select(t.KEY_SOURCE, t.COST_NANO_USD).from(t).where(t.USER_ID.eq(userId))
                .and(t.BILLING_MONTH.eq(month.atDay(1))).fetch()) {
            out.merge(r.value1(), r.value2(), Math::addExact);
        }
        return out;
    }

    static String json(Page p) {
        ObjectNode n = JSON.createObjectNode();
        n.put("object", "page");
        ArrayNode data = n.putArray("data");
        p.buckets().forEach((start, results) -> {
            ObjectNode b = data.addObject();
            b.put("object", "bucket");
            b.put("start_time", start.getEpochSecond());
            b.put("end_time", p.query().width().next(start).getEpochSecond());
            ArrayNode rs = b.putArray("results");
            for (Result r : results) {
                ObjectNode o = rs.addObject();
                o.put("object", RESULT_OBJECT);
                o.put("input_tokens", r.inputTokens());
                o.put("input_cached_tokens", r.cachedInputTokens());
                o.put("output_tokens", r.outputTokens());
                o.put("input_audio_tokens", 0);
                o.put("output_audio_tokens", 0);
                o.put("num_model_requests", r.requests());
                o.put("project_id", r.project());
                o.put("user_id", r.userId());
                o.put("api_key_id", (String) null);
                o.put("model", r.model());
                o.put("batch", (Boolean) null);
                o.put("key_source", r.keySource());
                o.put("reasoning_tokens", r.reasoningTokens());
                o.put("cost_nano_usd", r.costNanoUsd());
                ObjectNode amount = o.putObject("amount");
                amount.put("value", Money.formatUsd(r.costNanoUsd()));
                amount.put("currency", "usd");
                o.put("source", r.source());
                if (p.query().dimension() != null) {
                    o.putObject("labels").put(p.query().dimension(), r.labelValue());
                }
            }
        });
        n.put("has_more", p.nextPage() != null);
        n.put("next_page", p.nextPage());
        return n.toString();
    }

    static String csv(Page p) {
        StringBuilder s = new StringBuilder(CSV_HEADER).append("\r\n");
        p.buckets().forEach((start, results) -> {
            for (Result r : results) {
                s.append(start.getEpochSecond()).append(',').append(p.query().width().next(start).getEpochSecond()).append(',')
                        .append(r.source()).append(',').append(field(r.model())).append(',').append(field(r.keySource()))
                        .append(',').append(field(r.userId())).append(',').append(field(r.project())).append(',')
                        .append(r.requests()).append(',').append(r.inputTokens()).append(',')
                        .append(r.cachedInputTokens() == null ? "" : r.cachedInputTokens()).append(',')
                        .append(r.outputTokens()).append(',').append(r.reasoningTokens() == null ? "" : r.reasoningTokens())
                        .append(',').append(r.costNanoUsd()).append(',').append(Money.formatUsd(r.costNanoUsd())).append(',')
                        .append(field(p.query().dimension())).append(',').append(field(r.labelValue())).append("\r\n");
            }
        });
        return s.toString();
    }

    /** RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled. */
    static String field(String v) {
        if (v == null) {
            return "";
        }
        if (v.indexOf(',') < 0 && v.indexOf('"') < 0 && v.indexOf('\n') < 0 && v.indexOf('\r') < 0) {
            return v;
        }
        return '"' + v.replace("\"", "\"\"") + '"';
    }
}
