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
 *
 * <p>The response cache's statistics (issue 19), per endpoint and model (the requested model, which has a price, so
 * the label's values are bounded by the price card): {@code edge_response_cache_lookups_total{endpoint,model,result}}
 * (result hit, miss, refresh or bypass, for cacheable calls only; hit ratio = hit / (hit + miss)),
 * {@code edge_response_cache_saved_tokens_total{endpoint,model}} (tokens of the answers served from the cache) and
 * {@code edge_response_cache_saved_upstream_nano_usd_total{endpoint,model}} (what those answers would have cost
 * upstream at today's price). A Prometheus value is a float64: exact up to 2^53 nano-USD (about 9 million USD) per
 * edge process; the exact figures are the ledger's (response_cache_hit, upstream_cost_nano_usd, ADR 0075).
 */
public final class EdgeMetrics implements CallMetrics {

    private final MeterRegistry registry;
    private final Timer decisionLatency;
    private final Timer upstreamLatency;
    private final Counter failOpenAdmissions;
    private final Map<String, Counter> requests = new ConcurrentHashMap<>();
    private final Map<String, Counter> cacheCounters = new ConcurrentHashMap<>();

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

    /** A cacheable call's lookup: {@code result} hit, miss, refresh or bypass. */
    public void cacheLookup(String endpoint, String model, String result) {
        cacheCounter("edge_response_cache_lookups", "Response-cache lookups of cacheable calls by result",
                endpoint, model, result).increment();
    }

    /** A call answered from the cache: its tokens, and what the answer would have cost upstream. */
    public void cacheHitAnswered(String endpoint, String model, long tokens, long upstreamNanoUsd) {
        cacheCounter("edge_response_cache_saved_tokens", "Tokens of answers served from the response cache",
                endpoint, model, null).increment(tokens);
        cacheCounter("edge_response_cache_saved_upstream_nano_usd",
                "Upstream price (nano-USD, today's price) of answers served from the response cache",
                endpoint, model, null).increment(upstreamNanoUsd);
    }

    private Counter cacheCounter(String name, String description, String endpoint, String model, String result) {
        return cacheCounters.computeIfAbsent(name + '|' + endpoint + '|' + model + '|' + result, k -> {
            Counter.Builder b = Counter.builder(name).description(description).tag("endpoint", endpoint).tag("model", model);
            return (result == null ? b : b.tag("result", result)).register(registry);
        });
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
