package dev.tokenmeter.edge.quota;

/**
 * How a decision was made: by the Redis script, by the failure policy while Redis is unavailable (the local share,
 * a refusal), or in Postgres (FAIL_TO_DATABASE: the same rules, exact money, ADR 0072).
 */
public enum DecisionMode {
    REDIS, FAIL_OPEN, FAIL_CLOSED, DATABASE
}
