package dev.tokenmeter.edge.quota;

/** What the engine does while Redis is unavailable (see docs/adr/0010-quota-in-redis.md). */
public enum FailurePolicy {
    FAIL_OPEN, FAIL_CLOSED
}
