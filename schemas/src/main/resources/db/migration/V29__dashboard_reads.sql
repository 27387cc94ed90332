-- The dashboard (issue 17, ADR 0082): the edge's admin listener answers GET /admin/pipeline with the
-- reconciliation status of a month, the dead letters of the sink and the notifier, and the billing sink's lag
-- (its stored offsets against the topics' end offsets). Read-only: the aggregate views and counters, never a
-- ledger row (the reconciliation view runs with its owner's rights and shows sums per user and month).
GRANT SELECT ON reconciliation, sink_offset, sink_dead_letter, webhook_dead_letter TO tokenmeter_edge;
