package dev.tokenmeter.sink.upstream;

import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.events.UpstreamDifference;
import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.events.topic.TopicSpec;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Publishes an {@code upstream_difference} alert ({@code UsageAlert} v2, ADR 0086) on {@code usage-alerts} for each
 * day and model beyond tolerance, keyed {@code upstream}, with the deterministic id {@code upstream|day|model}, so a
 * consumer dropping duplicates by id sees one per day and model. A difference already sent with the same numbers is
 * not sent again by this process; a changed one is. Sends synchronously on the reconciler's thread: a failure fails
 * the run (logged, retried next run), never a silent drop. Idempotent producer, {@code acks=all}.
 */
public final class UpstreamAlertPublisher implements UpstreamReconciler.DifferenceListener, AutoCloseable {

    private final Producer<String, UsageAlert> producer;
    private final String topic;
    private final Set<UpstreamReconciler.Difference> sent = ConcurrentHashMap.newKeySet();

    public UpstreamAlertPublisher(KafkaClientSettings kafka, TopicSpec<String, UsageAlert> topic) {
        Map<String, Object> props = new HashMap<>(kafka.clientProperties());
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "billing-sink-upstream-alerts");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10_000);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 5_000);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        this.producer = new KafkaProducer<>(props, topic.keySerde().serializer(), topic.valueSerde().serializer());
        this.topic = topic.name();
    }

    static UsageAlert alertOf(UpstreamReconciler.Difference d, Instant checkedAt) {
        return UsageAlert.newBuilder()
                .setAlertId("upstream|" + d.day() + "|" + d.model()).setUserId("").setTenantId("")
                .setBillingMonth(d.day().toString().substring(0, 7)).setThresholdPercent(0)
                .setCostNanoUsd(Math.abs(d.costDifferenceNanoUsd())).setCreditNanoUsd(0)
                .setCrossedAt(checkedAt).setTriggeringEventId(null).setSource("billing-sink")
                .setKind("upstream_difference")
                .setUpstreamDifference(UpstreamDifference.newBuilder()
                        .setDay(d.day().toString()).setModel(d.model())
                        .setOursRequests(d.oursRequests()).setUpstreamRequests(d.upstreamRequests())
                        .setInputTokensDifference(d.inputTokensDifference())
                        .setCachedInputTokensDifference(d.cachedInputTokensDifference())
                        .setOutputTokensDifference(d.outputTokensDifference())
                        .setOursCostNanoUsd(d.oursCostNanoUsd()).setUpstreamCostNanoUsd(d.upstreamCostNanoUsd())
                        .build())
                .build();
    }

    @Override
    public void beyondTolerance(UpstreamReconciler.Difference d, Instant checkedAt) {
        if (sent.contains(d)) {
            return;
        }
        try {
            producer.send(new ProducerRecord<>(topic, "upstream", alertOf(d, checkedAt))).get(40, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("upstream alert for " + d.day() + " " + d.model() + " not sent: interrupted");
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("upstream alert for " + d.day() + " " + d.model() + " not sent: " + e, e);
        }
        sent.add(d);
    }

    @Override
    public void close() {
        producer.close();
    }
}
