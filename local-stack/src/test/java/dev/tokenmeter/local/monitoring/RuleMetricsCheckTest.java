package dev.tokenmeter.local.monitoring;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/** AlertMetricsIT's judgement on made-up scrapes: it finds what is missing, and only that. */
class RuleMetricsCheckTest {

    private static final Map<String, Map<String, List<Map<String, String>>>> SCRAPES = Map.of(
            "edge", MetricsText.parse("""
                    # TYPE edge_requests_total counter
                    edge_requests_total{endpoint="chat.completions",outcome="succeeded"} 3.0
                    edge_spool_in_use 0.0
                    """),
            "sink", MetricsText.parse("""
                    kafka_consumer_fetch_manager_records_lag{client_id="sink-ledger",partition="0",topic="usage-events"} 0.0
                    """),
            "aggregator", MetricsText.parse("""
                    kafka_consumer_fetch_manager_records_lag{client_id="agg-consumer",partition="0",topic="usage-events"} 2.0
                    """));

    private static List<String> check(String expr) {
        return RuleMetricsCheck.missing(List.of(new PromRules.Rule("R", true, expr)), Set.of("recorded:sum"), SCRAPES);
    }

    @Test
    void presentMetricsWithTheirLabelsPass_jobAndInstanceAreNotRequired() {
        assertThat(check("sum by (job, instance) (rate(edge_requests_total{job=\"edge\", outcome=\"failed\"}[5m])) > 0")).isEmpty();
        assertThat(check("sum by (job, topic) (kafka_consumer_fetch_manager_records_lag{job=~\"aggregator|sink\", client_id!~\".*restore.*\"})"))
                .isEmpty();
        assertThat(check("deriv(recorded:sum[5m]) > 0")).as("a recorded name is not scraped").isEmpty();
    }

    @Test
    void aMetricNoSelectedJobExportsIsReportedPerJob() {
        assertThat(check("increase(sink_dead_letters_total{job=~\"sink|aggregator\"}[10m]) > 0")).containsExactlyInAnyOrder(
                "R: sink does not export sink_dead_letters_total", "R: aggregator does not export sink_dead_letters_total");
        assertThat(check("edge_spool_in_use{job=\"sink\"} > 0")).containsExactly("R: sink does not export edge_spool_in_use");
    }

    @Test
    void aLabelTheRuleMatchesOrGroupsByIsReported() {
        assertThat(check("sum by (model) (rate(edge_requests_total{job=\"edge\", route=\"x\"}[5m]))")).containsExactlyInAnyOrder(
                "R: edge exports edge_requests_total without the label model",
                "R: edge exports edge_requests_total without the label route");
    }

    @Test
    void aJobMatcherThatSelectsNoScrapedJobIsReported() {
        assertThat(check("up{job=\"redis\"} == 0")).containsExactly("R: up selects no job of prometheus.yml");
    }
}
