package dev.tokenmeter.edge.quota;

import static dev.tokenmeter.db.jooq.Tables.USAGE_LEDGER;
import static dev.tokenmeter.db.jooq.Tables.USAGE_TOTAL_MONTHLY;

import java.math.BigDecimal;
import java.time.YearMonth;
import java.util.Map;
import java.util.Objects;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;

/** {@link UsageBaseline} over {@code usage_total_monthly}: SUM(cost_nano_usd) by key_source. */
public final class JooqUsageBaseline implements UsageBaseline {

    private final DSLContext db;

    public JooqUsageBaseline(DataSource dataSource) {
        this.db = DSL.using(Objects.requireNonNull(dataSource, "dataSource"), SQLDialect.POSTGRES);
    }

    @Override
    public MonthlyUsage monthlyUsage(String userId, YearMonth month) {
        var t = USAGE_TOTAL_MONTHLY;
        var service = DSL.coalesce(DSL.sum(t.COST_NANO_USD).filterWhere(t.KEY_SOURCE.eq("SERVICE_CREDIT")), BigDecimal.ZERO);
        var personal = DSL.coalesce(DSL.sum(t.COST_NANO_USD).filterWhere(t.KEY_SOURCE.eq("PERSONAL_KEY")), BigDecimal.ZERO);
        var r = db.select(service, personal).from(t)
                .where(t.USER_ID.eq(userId)).and(t.BILLING_MONTH.eq(month.atDay(1)))
                .fetchOne();
        return new MonthlyUsage(r.value1().longValueExact(), r.value2().longValueExact());
    }

    /**
     * From the ledger (the monthly totals have no key): one partition, the user's index; read on a key's first call
     * of a month on each edge and after a Redis loss, not per call.
     */
    @Override
    public long keyServiceCreditNanoUsd(String userId, String apiKeyId, YearMonth month) {
        var l = USAGE_LEDGER;
        BigDecimal sum = db.select(DSL.coalesce(DSL.sum(l.COST_NANO_USD), BigDecimal.ZERO)).from(l)
                .where(l.USER_ID.eq(userId)).and(l.BILLING_MONTH.eq(month.atDay(1)))
                .and(l.API_KEY_ID.eq(apiKeyId)).and(l.KEY_SOURCE.eq("SERVICE_CREDIT"))
                .fetchOne().value1();
        return sum.longValueExact();
    }

    /**
     * From the ledger, by tenant (ADR 0081; V32 grants the edge the ledger's tenant_id and indexes it): read on a
     * tenant's first call of a month on each edge and after a Redis loss, not per call.
     */
    @Override
    public long tenantServiceCreditNanoUsd(String tenantId, YearMonth month) {
        var l = USAGE_LEDGER;
        BigDecimal sum = db.select(DSL.coalesce(DSL.sum(l.COST_NANO_USD), BigDecimal.ZERO)).from(l)
                .where(l.TENANT_ID.eq(tenantId)).and(l.BILLING_MONTH.eq(month.atDay(1)))
                .and(l.KEY_SOURCE.eq("SERVICE_CREDIT"))
                .fetchOne().value1();
        return sum.longValueExact();
    }

    @Override
    public Map<String, Long> serviceCreditByUser(YearMonth month) {
        var t = USAGE_TOTAL_MONTHLY;
        return db.select(t.USER_ID, DSL.sum(t.COST_NANO_USD)).from(t)
                .where(t.BILLING_MONTH.eq(month.atDay(1))).and(t.KEY_SOURCE.eq("SERVICE_CREDIT"))
                .groupBy(t.USER_ID)
                .fetchMap(r -> r.value1(), r -> r.value2().longValueExact());
    }
}
