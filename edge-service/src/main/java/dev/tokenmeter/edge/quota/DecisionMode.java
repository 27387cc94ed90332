package dev.tokenmeter.edge.quota;

/** How a decision was made: by the Redis script, or by the failure policy while Redis is unavailable. */
public enum DecisionMode {
    REDIS, FAIL_OPEN, FAIL_CLOSED
}
