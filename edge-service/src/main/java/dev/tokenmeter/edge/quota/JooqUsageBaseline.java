package dev.tokenmeter.edge.quota;

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

    @Override
    public Map<String, Long> serviceCreditByUser(YearMonth month) {
        var t = USAGE_TOTAL_MONTHLY;
        return db.select(t.USER_ID, DSL.sum(t.COST_NANO_USD)).from(t)
                .where(t.BILLING_MONTH.eq(month.atDay(1))).and(t.KEY_SOURCE.eq("SERVICE_CREDIT"))
                .groupBy(t.USER_ID)
                .fetchMap(r -> r.value1(), r -> r.value2().longValueExact());
    }
}
