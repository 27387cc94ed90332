package dev.tokenmeter.edge.admin;

import org.jooq.DSLContext;

import java.util.List;

import static dev.tokenmeter.db.jooq.Tables.PLAN;

/** Writes of table {@code plan}. */
final class PlanStore {

    /** The soft-limit alert threshold of a new plan that names none. */
    static final int DEFAULT_SOFT_LIMIT_PERCENT = 80;

    /** A plan's fields as a request gives them; null means not given (an update keeps the stored value). */
    record PlanFields(String displayName, Long monthlyCreditNanoUsd, Integer requestsPerMinute, Long tokensPerMinute,
                      Integer softLimitPercent, CacheFields cache, JsonBody.Given<List<String>> allowedModels) {

        PlanFields(String displayName, Long monthlyCreditNanoUsd, Integer requestsPerMinute, Long tokensPerMinute,
                   Integer softLimitPercent) {
            this(displayName, monthlyCreditNanoUsd, requestsPerMinute, tokensPerMinute, softLimitPercent, CacheFields.NONE,
                    JsonBody.Given.absent());
        }
    }

    /**
     * The plan's response cache (issue 19, ADRs 0074/0075), as a request gives it: the TTL (given as null: the cache
     * off), whether any request is cacheable, a hit's price in percent of the full price; null / absent = keep.
     */
    record CacheFields(JsonBody.Given<Integer> ttlSeconds, Boolean anyRequest, Integer hitPricePercent) {
        static final CacheFields NONE = new CacheFields(JsonBody.Given.absent(), null, null);
    }

    private final DSLContext db;

    PlanStore(DSLContext db) {
        this.db = db;
    }

    /** A new plan: credit and both rates are required; the display name defaults to the id. */
    void insert(String planId, PlanFields f) {
        db.insertInto(PLAN).set(PLAN.PLAN_ID, planId)
                .set(PLAN.DISPLAY_NAME, f.displayName() == null ? planId : f.displayName())
                .set(PLAN.MONTHLY_CREDIT_NANO_USD, f.monthlyCreditNanoUsd())
                .set(PLAN.REQUESTS_PER_MINUTE, f.requestsPerMinute())
                .set(PLAN.TOKENS_PER_MINUTE, f.tokensPerMinute())
                .set(PLAN.SOFT_LIMIT_PERCENT, f.softLimitPercent() == null ? DEFAULT_SOFT_LIMIT_PERCENT : f.softLimitPercent())
                .set(PLAN.RESPONSE_CACHE_TTL_SECONDS, f.cache().ttlSeconds().value())
                .set(PLAN.RESPONSE_CACHE_ANY_REQUEST, Boolean.TRUE.equals(f.cache().anyRequest()))
                .set(PLAN.CACHE_HIT_PRICE_PERCENT, f.cache().hitPricePercent() == null ? 100 : f.cache().hitPricePercent())
                .set(PLAN.ALLOWED_MODELS, JsonBody.modelArray(f.allowedModels().value()))
                .execute();
    }

    /** Sets the fields given, keeps the others. */
    void update(String planId, PlanFields f) {
        var u = db.update(PLAN).set(PLAN.PLAN_ID, planId);
        if (f.displayName() != null) {
            u = u.set(PLAN.DISPLAY_NAME, f.displayName());
        }
        if (f.monthlyCreditNanoUsd() != null) {
            u = u.set(PLAN.MONTHLY_CREDIT_NANO_USD, f.monthlyCreditNanoUsd());
        }
        if (f.requestsPerMinute() != null) {
            u = u.set(PLAN.REQUESTS_PER_MINUTE, f.requestsPerMinute());
        }
        if (f.tokensPerMinute() != null) {
            u = u.set(PLAN.TOKENS_PER_MINUTE, f.tokensPerMinute());
        }
        if (f.softLimitPercent() != null) {
            u = u.set(PLAN.SOFT_LIMIT_PERCENT, f.softLimitPercent());
        }
        if (f.cache().ttlSeconds().present()) {
            u = u.set(PLAN.RESPONSE_CACHE_TTL_SECONDS, f.cache().ttlSeconds().value());
        }
        if (f.cache().anyRequest() != null) {
            u = u.set(PLAN.RESPONSE_CACHE_ANY_REQUEST, f.cache().anyRequest());
        }
        if (f.cache().hitPricePercent() != null) {
            u = u.set(PLAN.CACHE_HIT_PRICE_PERCENT, f.cache().hitPricePercent());
        }
        if (f.allowedModels().present()) {
            u = u.set(PLAN.ALLOWED_MODELS, JsonBody.modelArray(f.allowedModels().value()));
        }
        u.where(PLAN.PLAN_ID.eq(planId)).execute();
    }
}
