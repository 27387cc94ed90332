package dev.tokenmeter.edge.http;

import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.edge.quota.DecisionMode;
import dev.tokenmeter.edge.quota.RateLimitStatus;
import dev.tokenmeter.events.money.Money;

import java.util.function.BiConsumer;

/**
 * The quota headers of an answer: OpenAI's {@code x-ratelimit-*} (limit, remaining, reset per window), the credit
 * left ({@code x-credit-remaining-usd}) and the soft-limit warning, from a quota {@link Decision}. The proxy sets
 * them through its exchange, the metering API on its Javalin context.
 */
public final class QuotaHeaders {

    /** Response header naming the id of the usage event a call produced. */
    public static final String EVENT_ID = "x-tokenmeter-event-id";

    private QuotaHeaders() {
    }

    /** Sets the headers of {@code d} through {@code header}. */
    public static void set(BiConsumer<String, String> header, Decision d) {
        if (reported(d.requests())) {
            header.accept(RateLimitHeaders.LIMIT_REQUESTS, Long.toString(d.requests().limit()));
            header.accept(RateLimitHeaders.REMAINING_REQUESTS, Long.toString(Math.max(0, d.requests().remaining())));
            header.accept(RateLimitHeaders.RESET_REQUESTS, RateLimitHeaders.formatReset(d.requests().resetIn()));
        }
        if (reported(d.tokens())) {
            header.accept(RateLimitHeaders.LIMIT_TOKENS, Long.toString(d.tokens().limit()));
            header.accept(RateLimitHeaders.REMAINING_TOKENS, Long.toString(Math.max(0, d.tokens().remaining())));
            header.accept(RateLimitHeaders.RESET_TOKENS, RateLimitHeaders.formatReset(d.tokens().resetIn()));
        }
        Long credit = remainingCreditNanoUsd(d);
        if (credit != null) {
            header.accept(RateLimitHeaders.CREDIT_REMAINING_USD, Money.formatUsd(credit));
        }
        if (d.admitted() && d.softLimit().reached()) {
            header.accept(RateLimitHeaders.SOFT_LIMIT_REACHED, "true");
            if (d.softLimit().percent() > 0) {
                header.accept(RateLimitHeaders.SOFT_LIMIT_PERCENT, Integer.toString(d.softLimit().percent()));
            }
        }
    }

    /** A window the engine has a limit for (no limit configured: no headers for it). */
    static boolean reported(RateLimitStatus s) {
        return s != null && s.limit() > 0;
    }

    /**
     * The credit left to tell the caller, or null: it is meaningful only for service-credit calls and credit
     * rejections decided in Redis or in Postgres (not for a personal key's user without credit, fail-open or fail-closed).
     */
    public static Long remainingCreditNanoUsd(Decision d) {
        return (d.mode() == DecisionMode.REDIS || d.mode() == DecisionMode.DATABASE) && d.creditNanoUsd() > 0 ? d.remainingCreditNanoUsd() : null;
    }
}
