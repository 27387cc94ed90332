package dev.tokenmeter.edge.alert;

import dev.tokenmeter.edge.account.Account;
import dev.tokenmeter.edge.account.AccountDirectory;
import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.edge.publish.ReliableProducers;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.alert.UsageAlertIds;
import dev.tokenmeter.events.topic.TopicSpec;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.time.Instant;
import java.time.YearMonth;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Publishes the edge's {@code UsageAlert}s (thresholds of the monthly credit crossed at reserve or settle) to the
 * alerts topic ({@code Topics.alerts()}), keyed by user id, with {@code source = "edge"} and the aggregator's alert
 * id {@code userId|yyyy-MM|threshold}, so a consumer that drops duplicates by id sees one alert per threshold and
 * month whichever of the two raised it first. Idempotent producer, {@code acks=all}.
 *
 * <p>Never blocks or fails the call that crossed the threshold: {@link #thresholdsCrossed} hands the work to one
 * background thread (a bounded queue; when it is full the alert is dropped and counted), which looks up the tenant
 * (and the credit, when the caller does not know it) in the cached account directory and sends asynchronously.
 * Failures are logged and counted in {@code edge_alerts_total{outcome="failed"|"dropped"}}; the aggregator's
 * alerts from billed usage are the durable backstop (docs/adr/0010-quota-in-redis.md).
 */
public final class UsageAlertPublisher implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(UsageAlertPublisher.class);
    private static final int QUEUE_CAPACITY = 10_000;

    private final Producer<String, UsageAlert> producer;
    private final String topic;
    private final AccountDirectory accounts;
    private final ThreadPoolExecutor worker;
    private final Counter sent;
    private final Counter failed;
    private final Counter dropped;

    public UsageAlertPublisher(KafkaClientSettings kafka, TopicSpec<String, UsageAlert> topic, AccountDirectory accounts,
                               MeterRegistry registry) {
        Map<String, Object> props = ReliableProducers.properties(kafka, "edge-usage-alerts", Duration.ofSeconds(30));
        this.producer = new KafkaProducer<>(props, topic.keySerde().serializer(), topic.valueSerde().serializer());
        this.topic = topic.name();
        this.accounts = accounts;
        this.worker = new ThreadPoolExecutor(1, 1, 0, TimeUnit.MILLISECONDS, new ArrayBlockingQueue<>(QUEUE_CAPACITY),
                r -> Thread.ofPlatform().name("edge-usage-alerts").daemon(true).unstarted(r));
        this.sent = counter(registry, "sent");
        this.failed = counter(registry, "failed");
        this.dropped = counter(registry, "dropped");
    }

    private static Counter counter(MeterRegistry registry, String outcome) {
        return Counter.builder("edge_alerts").description("usage alerts the edge published, by outcome")
                .tag("outcome", outcome).register(registry);
    }

    /**
     * Queues one alert per threshold; returns at once.
     *
     * @param costNanoUsd       the month's service-credit usage when crossed (committed usage at reserve, settled usage
     *                          at settle)
     * @param creditNanoUsd     the monthly credit, or -1 when the caller does not know it (looked up in the background)
     * @param triggeringEventId the usage event of the call that crossed it, or null
     */
    public void thresholdsCrossed(String userId, YearMonth month, List<Integer> thresholds, long costNanoUsd,
                                  long creditNanoUsd, Instant crossedAt, String triggeringEventId) {
        if (thresholds.isEmpty()) {
            return;
        }
        try {
            worker.execute(() -> send(userId, month, List.copyOf(thresholds), costNanoUsd, creditNanoUsd, crossedAt,
                    triggeringEventId));
        } catch (RejectedExecutionException e) {
            dropped.increment(thresholds.size());
            LOG.warn("usage alerts {} of user {} for {} dropped: the alert queue is full or closed", thresholds, userId, month);
        } catch (RuntimeException e) {
            failed.increment(thresholds.size());
            LOG.warn("usage alerts {} of user {} for {} not queued: {}", thresholds, userId, month, e.toString());
        }
    }

    private void send(String userId, YearMonth month, List<Integer> thresholds, long costNanoUsd, long creditNanoUsd,
                      Instant crossedAt, String triggeringEventId) {
        try {
            Optional<Account> account = accounts.find(userId);
            long credit = creditNanoUsd >= 0 ? creditNanoUsd : account.map(Account::monthlyCreditNanoUsd).orElse(-1L);
            if (credit < 0) {
                failed.increment(thresholds.size());
                LOG.warn("usage alerts {} of user {} for {} not published: the account is unknown", thresholds, userId, month);
                return;
            }
            String tenantId = account.map(Account::tenantId).orElse("");
            for (int threshold : thresholds) {
                UsageAlert alert = UsageAlert.newBuilder()
                        .setAlertId(UsageAlertIds.of(userId, month, threshold)).setUserId(userId).setTenantId(tenantId)
                        .setBillingMonth(month.toString()).setThresholdPercent(threshold)
                        .setCostNanoUsd(Math.max(0, costNanoUsd)).setCreditNanoUsd(credit)
                        .setCrossedAt(crossedAt).setTriggeringEventId(triggeringEventId).setSource("edge")
                        .build();
                producer.send(new ProducerRecord<>(topic, null, crossedAt.toEpochMilli(), userId, alert), (meta, error) -> {
                    if (error == null) {
                        sent.increment();
                    } else {
                        failed.increment();
                        LOG.warn("usage alert {} was not acknowledged by Kafka: {}", alert.getAlertId(), error.toString());
                    }
                });
            }
        } catch (RuntimeException e) {
            failed.increment(thresholds.size());
            LOG.warn("usage alerts {} of user {} for {} not published: {}", thresholds, userId, month, e.toString());
        }
    }

    /** Sends what is queued (waiting up to 10 s), then closes the producer. */
    @Override
    public void close() {
        worker.shutdown();
        try {
            if (!worker.awaitTermination(10, TimeUnit.SECONDS)) {
                LOG.warn("usage alerts still queued at shutdown were dropped");
                worker.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        producer.close(Duration.ofSeconds(10));
    }
}
