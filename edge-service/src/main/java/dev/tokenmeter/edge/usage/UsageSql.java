package dev.tokenmeter.edge.usage;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The one SQL statement a usage query page runs against the billed totals: 1h and 1d buckets from
 * {@code usage_total_hourly}, 1mo from {@code usage_total_monthly}, summed per bucket and group, ordered by bucket and
 * group. Public so the benchmark can issue exactly this SQL straight to Postgres.
 *
 * @param sql   with {@code ?} binds; selects bucket (epoch seconds), the group columns in order, then event_count,
 *              prompt_tokens, cached_prompt_tokens, completion_tokens, reasoning_tokens, cost_nano_usd
 * @param binds the range's bounds (Long, unix seconds), the dimension for rollups, then user_id and tenant_id (String)
 *              when given
 */
public record UsageSql(String sql, List<Object> binds) {

    static UsageSql of(UsageQuery q, Instant from, Instant to) {
        return q.rollup() ? rollup(q, from, to) : totals(q, from, to);
    }

    private static UsageSql totals(UsageQuery q, Instant from, Instant to) {
        boolean monthly = q.width() == UsageQuery.Width.MO1;
        String bucket = switch (q.width()) {
            case H1 -> "extract(epoch from hour_start)::bigint";
            case D1 -> "extract(epoch from date_trunc('day', hour_start, 'UTC'))::bigint";
            case MO1 -> "extract(epoch from (billing_month::timestamp AT TIME ZONE 'UTC'))::bigint";
        };
        String time = monthly ? "billing_month" : "hour_start";
        List<Object> binds = new ArrayList<>();
        StringBuilder s = new StringBuilder("SELECT ").append(bucket).append(" AS bucket");
        for (String g : q.groupBy()) {
            s.append(", ").append(g);
        }
        s.append(", sum(event_count)::bigint, sum(prompt_tokens)::bigint, sum(cached_prompt_tokens)::bigint,")
                .append(" sum(completion_tokens)::bigint, sum(reasoning_tokens)::bigint, sum(cost_nano_usd)::bigint")
                .append(" FROM ").append(monthly ? "usage_total_monthly" : "usage_total_hourly")
                .append(" WHERE ").append(time).append(" >= ").append(bound(monthly))
                .append(" AND ").append(time).append(" < ").append(bound(monthly));
        binds.add(from.getEpochSecond());
        binds.add(to.getEpochSecond());
        return finish(q, s, binds, q.groupBy().size());
    }

    /**
     * project_id or a dimension grouped by: the attribution rollups (ADR 0078), daily or monthly. Each dimension's
     * values (with {@code (none)} and {@code (other)}) and, under the pseudo-dimension {@code (all)}, each project add
     * up to the user's total, so a page reads exactly one dimension — the grouped one, else {@code (all)} — and never
     * sums rows of two dimensions (which would count every call once per dimension). The rollups keep no cached or
     * reasoning tokens: those columns are NULL.
     */
    private static UsageSql rollup(UsageQuery q, Instant from, Instant to) {
        boolean monthly = q.width() == UsageQuery.Width.MO1;
        String time = monthly ? "billing_month" : "day";
        List<Object> binds = new ArrayList<>();
        StringBuilder s = new StringBuilder("SELECT extract(epoch from (").append(time)
                .append("::timestamp AT TIME ZONE 'UTC'))::bigint AS bucket");
        for (String g : q.groupBy()) {
            s.append(", ").append(g.equals("project_id") ? "project" : g);
        }
        if (q.dimension() != null) {
            s.append(", value");
        }
        s.append(", sum(event_count)::bigint, sum(prompt_tokens)::bigint, NULL::bigint, sum(completion_tokens)::bigint,")
                .append(" NULL::bigint, sum(cost_nano_usd)::bigint")
                .append(" FROM ").append(monthly ? "usage_rollup_monthly" : "usage_rollup_daily")
                .append(" WHERE ").append(time).append(" >= ").append(bound(true))
                .append(" AND ").append(time).append(" < ").append(bound(true))
                .append(" AND dimension = ?");
        binds.add(from.getEpochSecond());
        binds.add(to.getEpochSecond());
        binds.add(q.dimension() != null ? q.dimension() : ALL_DIMENSION);
        return finish(q, s, binds, q.groupBy().size() + (q.dimension() != null ? 1 : 0));
    }

    /** The rollups' pseudo-dimension holding each project's total (ADR 0078). */
    static final String ALL_DIMENSION = "(all)";

    /** The user and tenant filters, then grouping and ordering by the bucket and the {@code groups} columns after it. */
    private static UsageSql finish(UsageQuery q, StringBuilder s, List<Object> binds, int groups) {
        if (q.userId() != null) {
            s.append(" AND user_id = ?");
            binds.add(q.userId());
        }
        if (q.tenantId() != null) {
            s.append(" AND tenant_id = ?");
            binds.add(q.tenantId());
        }
        StringBuilder order = new StringBuilder("1");
        for (int i = 0; i < groups; i++) {
            order.append(", ").append(i + 2);
        }
        s.append(" GROUP BY ").append(order).append(" ORDER BY ").append(order);
        return new UsageSql(s.toString(), List.copyOf(binds));
    }

    private static String bound(boolean monthly) {
        return monthly ? "(to_timestamp(?) AT TIME ZONE 'UTC')::date" : "to_timestamp(?)";
    }

    /**
     * The SQL of the first page of a query, for the benchmark: {@code bucketWidth} 1h|1d|1mo, a tenant or a user
     * (either may be null), grouped by {@code groupBy}.
     */
    public static UsageSql forBenchmark(String bucketWidth, Instant start, Instant end, List<String> groupBy,
                                        String userId, String tenantId) throws Exception {
        UsageQuery.Width w = UsageQuery.Width.parse(bucketWidth);
        UsageQuery q = new UsageQuery(w, start, end, groupBy, w.maxLimit, start, userId, tenantId, null);
        List<Instant> buckets = q.pageBuckets();
        return of(q, start, q.width().next(buckets.get(buckets.size() - 1)));
    }
}
