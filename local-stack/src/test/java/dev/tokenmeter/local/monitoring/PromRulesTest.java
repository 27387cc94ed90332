package dev.tokenmeter.local.monitoring;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/** What {@link PromRules} reads from an expression, and from this repository's rules file. */
class PromRulesTest {

    @Test
    void selectorsSkipFunctionsAggregationsKeywordsRangesAndGroupingLists() {
        String expr = "sum by (job, instance) (rate(edge_requests_total{job=\"edge\", outcome=\"failed\"}[5m]))\n"
                + "  / on (instance) group_left sum(rate(edge_requests_total[5m] offset 1h)) > 0.05 and time() - last_ts > 600";
        assertThat(PromRules.selectors(expr)).containsExactly(
                new PromRules.Selector("edge_requests_total", List.of(
                        new PromRules.Matcher("job", "=", "edge"), new PromRules.Matcher("outcome", "=", "failed"))),
                new PromRules.Selector("edge_requests_total", List.of()),
                new PromRules.Selector("last_ts", List.of()));
        assertThat(PromRules.groupingLabels(expr)).containsExactly("job", "instance");
    }

    @Test
    void regexMatchersAndEscapedQuotesAreRead() {
        assertThat(PromRules.selectors("m{client_id!~\".*restore-consumer.*\", a=~\"x|y\", b!=\"say \\\"hi\\\"\"}"))
                .containsExactly(new PromRules.Selector("m", List.of(
                        new PromRules.Matcher("client_id", "!~", ".*restore-consumer.*"),
                        new PromRules.Matcher("a", "=~", "x|y"),
                        new PromRules.Matcher("b", "!=", "say \"hi\""))));
    }

    @Test
    void theRepositorysRulesUseTheseMetrics() throws Exception {
        PromRules rules = PromRules.read(MonitoringFiles.prometheusDir().resolve("rules.yml"));
        assertThat(rules.recordedNames()).containsExactly("tokenmeter:consumer_lag_records:sum");
        Map<String, Set<String>> used = rules.metricsAndLabels();
        assertThat(used).containsOnlyKeys("kafka_consumer_fetch_manager_records_lag", "redis_memory_used_bytes",
                "redis_memory_max_bytes", "tokenmeter_quota_reconcile_last_completed_timestamp_seconds",
                "edge_requests_total", "aggregator_dead_letters_total", "sink_dead_letters_total", "sink_rows_refused_total",
                "edge_spool_set_aside_events_total", "edge_spool_in_use", "tokenmeter_quota_breaker_open");
        assertThat(used.get("kafka_consumer_fetch_manager_records_lag")).containsExactlyInAnyOrder("job", "instance", "topic", "client_id");
        assertThat(used.get("edge_requests_total")).containsExactlyInAnyOrder("job", "instance", "outcome");
    }
}
