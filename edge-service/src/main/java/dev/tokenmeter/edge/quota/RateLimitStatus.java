package dev.tokenmeter.edge.quota;

import java.time.Duration;

/** One limit for the x-ratelimit-* headers: the limit per minute, what is left now, and when it is full again. */
public record RateLimitStatus(long limit, long remaining, Duration resetIn) {}
