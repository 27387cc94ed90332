package dev.tokenmeter.edge.quota;

/**
 * What the engine does while Redis is unavailable (docs/adr/0010-quota-in-redis.md): reject retryably
 * (FAIL_CLOSED), admit against this process's share of the limits (FAIL_OPEN), or decide in Postgres with the
 * same rules, exactly, and hand over to Redis when it is back (FAIL_TO_DATABASE, docs/adr/0072-quota-database-fallback.md).
 */
public enum FailurePolicy {
    FAIL_OPEN, FAIL_CLOSED, FAIL_TO_DATABASE
}
