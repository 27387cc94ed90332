package dev.tokenmeter.edge.http;

import io.javalin.http.Context;

import java.util.function.BiConsumer;

/**
 * Answers an {@link OpenAiError}: the status, OpenAI's JSON shape, {@code x-should-retry: false} where retrying cannot
 * help and {@code retry-after} when the error names a wait. Every route of the edge answers its errors through here,
 * the proxy (over its own exchange, with {@link #headers}) and the Javalin routes alike.
 */
public final class HttpErrors {

    private HttpErrors() {
    }

    /** Answers {@code error} on a Javalin route. */
    public static void respond(Context ctx, OpenAiError error) {
        ctx.status(error.status());
        headers(ctx::header, error);
        ctx.contentType("application/json");
        ctx.result(error.toJson());
    }

    /** The headers that go with {@code error}, set through {@code header}. */
    public static void headers(BiConsumer<String, String> header, OpenAiError error) {
        header.accept(RateLimitHeaders.SHOULD_RETRY, Boolean.toString(error.retryable()));
        if (error.retryAfter() != null) {
            header.accept("retry-after", Long.toString(Math.max(1, (error.retryAfter().toMillis() + 999) / 1000)));
        }
    }
}
