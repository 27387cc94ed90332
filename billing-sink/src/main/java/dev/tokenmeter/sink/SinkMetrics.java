package dev.tokenmeter.sink;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;

/** The sink's own metrics; the Kafka consumer's (lag included) are bound beside them. */
final class SinkMetrics {

    final Counter ledgerRows;
    final Counter totalRows;
    final Counter duplicates;
    final Counter deadLetters;
    final Counter retries;
    final Counter refusedRows;
    final MeterRegistry registry;

    SinkMetrics(MeterRegistry registry) {
        this.registry = registry;
        ledgerRows = Counter.builder("sink_ledger_rows_written").description("New ledger rows").register(registry);
        totalRows = Counter.builder("sink_total_rows_upserted").description("Hourly and monthly totals offered to the database").register(registry);
        duplicates = Counter.builder("sink_duplicates_skipped").description("Events whose id was already billed").register(registry);
        deadLetters = Counter.builder("sink_dead_letters").description("Records written to sink_dead_letter").register(registry);
        refusedRows = Counter.builder("sink_rows_refused")
                .description("Rows the database refused for good (their records set aside to sink_dead_letter)").register(registry);
        retries = Counter.builder("sink_write_retries").description("Batches retried because the database was unavailable").register(registry);
    }

    static SinkMetrics noop() {
        return new SinkMetrics(new SimpleMeterRegistry());
    }
}
