package dev.tokenmeter.edge.http;

import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.edge.quota.RateLimitStatus;
import dev.tokenmeter.edge.quota.RejectReason;

import java.time.Duration;

/** The error answer of a quota decision that refused a call, as OpenAI would word it. */
public final class Rejections {

    private Rejections() {
    }

    public static OpenAiError of(Decision decision) {
        RejectReason reason = decision.rejectReason() == null ? RejectReason.QUOTA_UNAVAILABLE : decision.rejectReason();
        return switch (reason) {
            case CREDIT_EXHAUSTED -> OpenAiError.insufficientQuota(
                    "You exceeded your current quota: your monthly credit is used up. Add credit or use your own key.");
            case KEY_BUDGET_EXCEEDED -> OpenAiError.keyBudgetExceeded();
            case TENANT_BUDGET_EXCEEDED -> OpenAiError.tenantBudgetExceeded();
            case RATE_LIMITED_REQUESTS -> OpenAiError.rateLimited("Rate limit reached for requests per minute.", "requests",
                    decision.retryAfter() != null ? decision.retryAfter() : resetOf(decision.requests()));
            case RATE_LIMITED_TOKENS -> OpenAiError.rateLimited("Rate limit reached for tokens per minute.", "tokens",
                    decision.retryAfter() != null ? decision.retryAfter() : resetOf(decision.tokens()));
            case ACCOUNT_DISABLED -> OpenAiError.accountDisabled();
            case UNKNOWN_USER -> OpenAiError.invalidApiKey("The API key's user has no account at this service.");
            case QUOTA_UNAVAILABLE -> OpenAiError.unavailable("Quota decisions are unavailable right now; try again shortly.",
                    decision.retryAfter() != null ? decision.retryAfter() : Duration.ofSeconds(1));
        };
    }

    private static Duration resetOf(RateLimitStatus limit) {
        return QuotaHeaders.reported(limit) ? limit.resetIn() : Duration.ofSeconds(1);
    }
}
