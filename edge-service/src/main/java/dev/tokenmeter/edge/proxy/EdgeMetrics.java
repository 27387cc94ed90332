package dev.tokenmeter.edge.proxy;

import dev.tokenmeter.edge.call.CallMetrics;
import dev.tokenmeter.edge.publish.EventSink;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The edge's Prometheus meters: {@code edge_requests_total{endpoint,outcome}}, {@code edge_quota_decision_seconds},
 * {@code edge_upstream_seconds} (time to the upstream's response headers), {@code edge_spool_pending_events}
 * (EventSink.pendingEvents), {@code edge_spool_in_use} (1 while events go to the spool, EventSink.spooling),
 * {@code edge_spool_bytes} (EventSink.spoolBytes), {@code edge_spool_set_aside_events_total} (EventSink.setAsideEvents)
 * and {@code edge_fail_open_admissions_total}. The alert rules that read them: docker/prometheus/rules.yml.
 */
public final class EdgeMetrics implements CallMetrics {

    private final MeterRegistry registry;
    private final Timer decisionLatency;
    private final Timer upstreamLatency;
    private final Counter failOpenAdmissions;
    private final Map<String, Counter> requests = new ConcurrentHashMap<>();

    public EdgeMetrics(MeterRegistry registry, EventSink sink) {
        this.registry = registry;
        this.decisionLatency = Timer.builder("edge_quota_decision")
                .description("Time for the quota engine's reserve decision").publishPercentileHistogram().register(registry);
        this.upstreamLatency = Timer.builder("edge_upstream")
                .description("Time until the upstream's response headers").publishPercentileHistogram().register(registry);
        this.failOpenAdmissions = Counter.builder("edge_fail_open_admissions")
                .description("Calls admitted without a quota decision under the fail-open policy").register(registry);
        Gauge.builder("edge_spool_pending_events", sink, EventSink::pendingEvents)
                .description("Usage events accepted but not yet acknowledged by Kafka").register(registry);
        Gauge.builder("edge_spool_in_use", sink, s -> s.spooling() ? 1 : 0)
                .description("1 while usage events go to the local spool instead of straight to Kafka").register(registry);
        Gauge.builder("edge_spool_bytes", sink, EventSink::spoolBytes)
                .description("Bytes in the local spool's files (limit: SPOOL_MAX_BYTES)").register(registry);
        FunctionCounter.builder("edge_spool_set_aside_events", sink, EventSink::setAsideEvents)
                .description("Usage events Kafka refused for good, set aside to SPOOL_DIR/rejected/").register(registry);
    }

    /** {@code outcome}: succeeded, failed, cancelled, rejected, unauthenticated, account_disabled, rate_limited (bad input over the rate limit: no event). */
    public void request(String endpoint, String outcome) {
        requests.computeIfAbsent(endpoint + '|' + outcome, k -> Counter.builder("edge_requests")
                .description("Proxied calls by endpoint and outcome")
                .tag("endpoint", endpoint).tag("outcome", outcome).register(registry)).increment();
    }

    public void decision(Duration d) {
        decisionLatency.record(d);
    }

    public void upstream(Duration d) {
        upstreamLatency.record(d);
    }

    public void failOpenAdmission() {
        failOpenAdmissions.increment();
    }

    public MeterRegistry registry() {
        return registry;
    }
}
