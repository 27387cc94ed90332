package dev.tokenmeter.notifier.delivery;

import dev.tokenmeter.events.UsageAlert;
import dev.tokenmeter.notifier.webhook.Webhook;
import dev.tokenmeter.notifier.webhook.WebhookStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * Delivers alerts to webhooks, each (alert, webhook) on its own virtual thread until its outcome is recorded:
 * begin (the pending row, or the final row a previous run left: then nothing is sent), attempts with backoff, then
 * {@code delivered} or {@code dead_letter}. A slow or dead endpoint holds only its own deliveries: at most
 * {@link DeliveryPolicy#concurrencyPerEndpoint()} requests to it at a time, each bounded by the timeouts, while every
 * other webhook's deliveries go on. The database is retried (with backoff up to 30 s) until the outcome is recorded,
 * so the consumer commits an alert's offset only when every webhook's outcome is in Postgres.
 */
public final class Deliveries {

    private static final Logger log = LoggerFactory.getLogger(Deliveries.class);
    private static final Duration DB_BACKOFF_MAX = Duration.ofSeconds(30);

    private final WebhookStore webhooks;
    private final DeliveryLog deliveryLog;
    private final WebhookSender sender;
    private final DeliveryPolicy policy;
    private final Clock clock;
    private final ConcurrentHashMap<UUID, Semaphore> lanes = new ConcurrentHashMap<>();
    /** A duplicate alert (the edge's and the aggregator's share an id) joins the delivery in flight. */
    private final ConcurrentHashMap<String, CompletableFuture<Void>> inFlight = new ConcurrentHashMap<>();
    private final AtomicLong delivered = new AtomicLong();
    private final AtomicLong deadLettered = new AtomicLong();
    private volatile boolean stopping;

    public Deliveries(WebhookStore webhooks, DeliveryLog deliveryLog, WebhookSender sender, DeliveryPolicy policy, Clock clock) {
        this.webhooks = webhooks;
        this.deliveryLog = deliveryLog;
        this.sender = sender;
        this.policy = policy;
        this.clock = clock;
    }

    /** Delivers the alert to every enabled webhook of its tenant; completes when all outcomes are recorded. */
    public CompletableFuture<Void> deliver(UsageAlert alert, RecordPosition from) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        Thread.ofVirtual().name("alert-" + from.partition() + "-" + from.offset()).start(() -> {
            try {
                List<Webhook> targets = alert.getTenantId().isEmpty() ? List.of()
                        : withDatabase("look up the webhooks of tenant " + alert.getTenantId(), () -> webhooks.enabledFor(alert.getTenantId()));
                CompletableFuture.allOf(targets.stream().map(w -> deliverOnce(alert, w, from)).toArray(CompletableFuture[]::new))
                        .whenComplete((v, e) -> complete(done, e));
            } catch (Throwable e) {
                done.completeExceptionally(e);
            }
        });
        return done;
    }

    /** Sets aside a record that is no UsageAlert; completes when the dead letter is recorded. */
    public CompletableFuture<Void> setAside(RecordPosition at, String reason) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        Thread.ofVirtual().name("bad-record-" + at.partition() + "-" + at.offset()).start(() -> {
            try {
                withDatabase("record a bad alert record", () -> {
                    deliveryLog.badRecord(at, reason);
                    return null;
                });
                log.warn("set aside the record at {}-{} offset {}: {}", at.topic(), at.partition(), at.offset(), reason);
                done.complete(null);
            } catch (Throwable e) {
                done.completeExceptionally(e);
            }
        });
        return done;
    }

    public long deliveredCount() {
        return delivered.get();
    }

    public long deadLetteredCount() {
        return deadLettered.get();
    }

    /** Lets every delivery stop at its next wait; nothing more is recorded (the offsets stay uncommitted). */
    public void stop() {
        stopping = true;
    }

    private CompletableFuture<Void> deliverOnce(UsageAlert alert, Webhook webhook, RecordPosition from) {
        String key = alert.getAlertId() + "|" + webhook.id();
        CompletableFuture<Void> mine = new CompletableFuture<>();
        CompletableFuture<Void> running = inFlight.putIfAbsent(key, mine);
        if (running != null) {
            return running;
        }
        Thread.ofVirtual().name("delivery-" + webhook.id()).start(() -> {
            try {
                while (true) {
                    try {
                        run(alert, webhook.id(), from);
                        break;
                    } catch (RuntimeException e) {
                        // A bug, not an endpoint's failure: say so, and try again rather than stall the partition
                        // silently (its offset cannot pass an alert without an outcome).
                        checkStopping();
                        log.error("alert {} to webhook {}: unexpected {}; trying again in 5 s", alert.getAlertId(),
                                webhook.id(), e.getClass().getName());
                        Thread.sleep(5_000);
                    }
                }
                mine.complete(null);
            } catch (Throwable e) {
                mine.completeExceptionally(e);
            } finally {
                inFlight.remove(key, mine);
            }
        });
        return mine;
    }

    private void run(UsageAlert alert, UUID webhookId, RecordPosition from) throws InterruptedException {
        String alertId = alert.getAlertId();
        DeliveryLog.State state = withDatabase("begin delivery", () -> deliveryLog.begin(alertId, webhookId));
        if (state.status() != DeliveryLog.Status.PENDING) {
            log.debug("alert {} to webhook {}: already {}", alertId, webhookId, state.status());
            return;
        }
        String deliveryId = AlertPayloads.deliveryId(alertId, webhookId);
        Instant deadline = state.firstAttemptAt().plus(policy.retryFor());
        int failed = state.attempts();
        String lastError = "no attempt";
        byte[] body = null;
        while (true) {
            checkStopping();
            Optional<Webhook> current = withDatabase("read webhook", () -> webhooks.get(webhookId));
            if (current.isEmpty() || !current.get().enabled()) {
                byte[] none = body == null ? new byte[0] : body;
                String reason = current.isEmpty() ? "webhook gone" : "webhook disabled after " + failed + " failed attempts";
                withDatabase("dead-letter", () -> {
                    deliveryLog.deadLetter(alertId, webhookId, reason, none, from);
                    return null;
                });
                deadLettered.incrementAndGet();
                return;
            }
            Webhook webhook = current.get();
            body = AlertPayloads.body(alert, webhook.format(), deliveryId);
            if (!clock.instant().isBefore(deadline)) {
                byte[] sent = body;
                String reason = "retries exhausted: " + failed + " failed attempts in " + policy.retryFor() + "; last: " + lastError;
                withDatabase("dead-letter", () -> {
                    deliveryLog.deadLetter(alertId, webhookId, reason, sent, from);
                    return null;
                });
                deadLettered.incrementAndGet();
                log.warn("alert {} to webhook {} ({}): dead-lettered after {} failed attempts, last: {}", alertId, webhookId,
                        webhook.origin(), failed, lastError);
                return;
            }
            WebhookSender.Outcome outcome;
            Semaphore lane = lanes.computeIfAbsent(webhookId, id -> new Semaphore(policy.concurrencyPerEndpoint()));
            lane.acquire();
            try {
                outcome = sender.send(webhook, alertId, deliveryId, body);
            } finally {
                lane.release();
            }
            if (outcome.delivered()) {
                withDatabase("record delivery", () -> deliveryLog.delivered(alertId, webhookId, outcome.httpStatus()));
                delivered.incrementAndGet();
                log.info("alert {} delivered to webhook {} ({}) after {} failed attempts", alertId, webhookId, webhook.origin(), failed);
                return;
            }
            failed++;
            lastError = outcome.error();
            int attempt = failed;
            withDatabase("record a failed attempt", () -> {
                deliveryLog.attemptFailed(alertId, webhookId, outcome.httpStatus(), outcome.error());
                return null;
            });
            log.info("alert {} to webhook {} ({}): attempt {} failed ({})", alertId, webhookId, webhook.origin(), attempt, outcome.error());
            Duration wait = policy.backoff(failed, ThreadLocalRandom.current().nextDouble());
            Duration left = Duration.between(clock.instant(), deadline);
            // The last wait ends at the deadline, so the dead letter is not later than DELIVERY_RETRY_FOR promises.
            Thread.sleep(Math.max(0, Math.min(wait.toMillis(), left.toMillis())));
        }
    }

    private void checkStopping() throws InterruptedException {
        if (stopping) {
            throw new InterruptedException("notifier stopping");
        }
    }

    private <T> T withDatabase(String what, Supplier<T> work) throws InterruptedException {
        long backoff = 200;
        while (true) {
            checkStopping();
            try {
                return work.get();
            } catch (RuntimeException e) {
                log.warn("could not {} ({}); retrying in {} ms", what, e.getClass().getSimpleName(), backoff);
                Thread.sleep(backoff);
                backoff = Math.min(DB_BACKOFF_MAX.toMillis(), backoff * 2);
            }
        }
    }

    private static void complete(CompletableFuture<Void> done, Throwable e) {
        if (e == null) {
            done.complete(null);
        } else {
            done.completeExceptionally(e);
        }
    }
}
