package dev.tokenmeter.aggregator;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;

/** The aggregator's own metrics (Kafka Streams' built-in metrics come on top). */
public final class AggregatorMetrics {

    final Counter eventsIn;
    final Counter duplicatesDropped;
    final Counter lateEvents;
    final Counter deadLettered;
    final Counter alertsRaised;
    final Counter processingFailures;
    final Counter overflows;
    final Counter tooLateForTotals;
    final Counter totalsForgotten;
    final DistributionSummary endToEndLagMs;

    public AggregatorMetrics(MeterRegistry registry) {
        eventsIn = Counter.builder("aggregator_events_in").description("Usage events read").register(registry);
        duplicatesDropped = Counter.builder("aggregator_duplicates_dropped").description("Events whose id was seen before").register(registry);
        lateEvents = Counter.builder("aggregator_late_events").description("Events past their hour's grace period (still counted, also sent to the late topic)").register(registry);
        deadLettered = Counter.builder("aggregator_dead_letters").description("Undecodable, invalid or failed records sent to the dead-letter topic").register(registry);
        processingFailures = Counter.builder("aggregator_processing_failures")
                .description("Records or punctuations whose processing threw (see aggregator_dead_letters, aggregator_overflows)").register(registry);
        overflows = Counter.builder("aggregator_overflows")
                .description("Events sent to the dead-letter topic because a total they belong to would overflow a long").register(registry);
        tooLateForTotals = Counter.builder("aggregator_too_late_for_totals")
                .description("Events dead-lettered because their hour closed more than CLOSED_TOTALS_RETENTION ago (billed in the ledger only)").register(registry);
        totalsForgotten = Counter.builder("aggregator_totals_forgotten")
                .description("Final totals removed from the state CLOSED_TOTALS_RETENTION after they closed").register(registry);
        alertsRaised = Counter.builder("aggregator_alerts").description("Credit threshold alerts raised").register(registry);
        endToEndLagMs = DistributionSummary.builder("aggregator_end_to_end_lag_ms")
                .description("Processing time minus the event's receivedAt").publishPercentiles(0.5, 0.99).register(registry);
    }

    public static AggregatorMetrics noop() {
        return new AggregatorMetrics(new SimpleMeterRegistry());
    }
}
