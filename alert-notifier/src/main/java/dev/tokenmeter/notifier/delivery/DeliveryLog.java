package dev.tokenmeter.notifier.delivery;

import org.jooq.DSLContext;

import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static dev.tokenmeter.db.jooq.Tables.WEBHOOK_DEAD_LETTER;
import static dev.tokenmeter.db.jooq.Tables.WEBHOOK_DELIVERY;

/**
 * The delivery log ({@code webhook_delivery}, one row per alert and webhook, its primary key the idempotency key) and
 * the dead letters. A row is inserted {@code pending} before the first attempt and moves once, conditionally, to
 * {@code delivered} or {@code dead_letter}: a second writer (a restarted notifier, a duplicate alert) finds it final.
 */
public final class DeliveryLog {

    static final int MAX_ERROR = 512;

    public enum Status { PENDING, DELIVERED, DEAD_LETTER }

    /** Where a delivery stands: its status, when it was first tried and how many attempts failed so far. */
    public record State(Status status, Instant firstAttemptAt, int attempts) {
    }

    private final DSLContext db;

    public DeliveryLog(DSLContext db) {
        this.db = db;
    }

    /** Records the delivery as pending unless it has a row already; its state either way. */
    public State begin(String alertId, UUID webhookId) {
        db.insertInto(WEBHOOK_DELIVERY).set(WEBHOOK_DELIVERY.ALERT_ID, alertId).set(WEBHOOK_DELIVERY.WEBHOOK_ID, webhookId)
                .set(WEBHOOK_DELIVERY.STATUS, "pending").onConflictDoNothing().execute();
        var r = db.selectFrom(WEBHOOK_DELIVERY).where(WEBHOOK_DELIVERY.ALERT_ID.eq(alertId))
                .and(WEBHOOK_DELIVERY.WEBHOOK_ID.eq(webhookId)).fetchSingle();
        return new State(Status.valueOf(r.getStatus().toUpperCase(java.util.Locale.ROOT)), r.getFirstAttemptAt().toInstant(),
                r.getAttempts());
    }

    public void attemptFailed(String alertId, UUID webhookId, Integer httpStatus, String error) {
        db.update(WEBHOOK_DELIVERY)
                .set(WEBHOOK_DELIVERY.ATTEMPTS, WEBHOOK_DELIVERY.ATTEMPTS.plus(1))
                .set(WEBHOOK_DELIVERY.LAST_HTTP_STATUS, httpStatus)
                .set(WEBHOOK_DELIVERY.LAST_ERROR, clip(error))
                .where(WEBHOOK_DELIVERY.ALERT_ID.eq(alertId)).and(WEBHOOK_DELIVERY.WEBHOOK_ID.eq(webhookId))
                .and(WEBHOOK_DELIVERY.STATUS.eq("pending"))
                .execute();
    }

    /** The endpoint answered 2xx. False when the row was already final (nothing changed). */
    public boolean delivered(String alertId, UUID webhookId, int httpStatus) {
        return db.update(WEBHOOK_DELIVERY)
                .set(WEBHOOK_DELIVERY.STATUS, "delivered")
                .set(WEBHOOK_DELIVERY.ATTEMPTS, WEBHOOK_DELIVERY.ATTEMPTS.plus(1))
                .set(WEBHOOK_DELIVERY.LAST_HTTP_STATUS, httpStatus)
                .set(WEBHOOK_DELIVERY.LAST_ERROR, (String) null)
                .set(WEBHOOK_DELIVERY.FINISHED_AT, OffsetDateTime.now(ZoneOffset.UTC))
                .where(WEBHOOK_DELIVERY.ALERT_ID.eq(alertId)).and(WEBHOOK_DELIVERY.WEBHOOK_ID.eq(webhookId))
                .and(WEBHOOK_DELIVERY.STATUS.eq("pending"))
                .execute() == 1;
    }

    /** Gives up on a delivery: final status and the dead letter (reason and body) in one transaction. */
    public void deadLetter(String alertId, UUID webhookId, String reason, byte[] body, RecordPosition from) {
        db.transaction(tx -> {
            int moved = tx.dsl().update(WEBHOOK_DELIVERY)
                    .set(WEBHOOK_DELIVERY.STATUS, "dead_letter")
                    .set(WEBHOOK_DELIVERY.FINISHED_AT, OffsetDateTime.now(ZoneOffset.UTC))
                    .where(WEBHOOK_DELIVERY.ALERT_ID.eq(alertId)).and(WEBHOOK_DELIVERY.WEBHOOK_ID.eq(webhookId))
                    .and(WEBHOOK_DELIVERY.STATUS.eq("pending"))
                    .execute();
            if (moved == 1) {
                tx.dsl().insertInto(WEBHOOK_DEAD_LETTER)
                        .set(WEBHOOK_DEAD_LETTER.ALERT_ID, alertId).set(WEBHOOK_DEAD_LETTER.WEBHOOK_ID, webhookId)
                        .set(WEBHOOK_DEAD_LETTER.REASON, clip(reason))
                        .set(WEBHOOK_DEAD_LETTER.BODY, new String(body, java.nio.charset.StandardCharsets.UTF_8))
                        .set(WEBHOOK_DEAD_LETTER.TOPIC, from.topic()).set(WEBHOOK_DEAD_LETTER.KAFKA_PARTITION, from.partition())
                        .set(WEBHOOK_DEAD_LETTER.KAFKA_OFFSET, from.offset())
                        .onConflictDoNothing().execute();
            }
        });
    }

    /** A record of usage-alerts that is no UsageAlert: set aside once, by its position. */
    public void badRecord(RecordPosition at, String reason) {
        db.insertInto(WEBHOOK_DEAD_LETTER).set(WEBHOOK_DEAD_LETTER.REASON, clip(reason))
                .set(WEBHOOK_DEAD_LETTER.TOPIC, at.topic()).set(WEBHOOK_DEAD_LETTER.KAFKA_PARTITION, at.partition())
                .set(WEBHOOK_DEAD_LETTER.KAFKA_OFFSET, at.offset())
                .onConflictDoNothing().execute();
    }

    /** A webhook's newest deliveries, for the admin API, as JSON-ready maps. */
    public List<Map<String, Object>> recent(UUID webhookId, int limit) {
        return db.select(WEBHOOK_DELIVERY.ALERT_ID, WEBHOOK_DELIVERY.STATUS, WEBHOOK_DELIVERY.ATTEMPTS,
                        WEBHOOK_DELIVERY.LAST_HTTP_STATUS, WEBHOOK_DELIVERY.LAST_ERROR, WEBHOOK_DELIVERY.FIRST_ATTEMPT_AT,
                        WEBHOOK_DELIVERY.FINISHED_AT)
                .from(WEBHOOK_DELIVERY).where(WEBHOOK_DELIVERY.WEBHOOK_ID.eq(webhookId))
                .orderBy(WEBHOOK_DELIVERY.FIRST_ATTEMPT_AT.desc()).limit(limit)
                .fetch(r -> {
                    Map<String, Object> m = new java.util.LinkedHashMap<>();
                    m.put("alert_id", r.value1());
                    m.put("status", r.value2());
                    m.put("attempts", r.value3());
                    m.put("last_http_status", r.value4());
                    m.put("last_error", r.value5());
                    m.put("first_attempt_at", r.value6().toInstant().toString());
                    m.put("finished_at", r.value7() == null ? null : r.value7().toInstant().toString());
                    return m;
                });
    }

    static String clip(String s) {
        return s == null || s.length() <= MAX_ERROR ? s : s.substring(0, MAX_ERROR - 3) + "...";
    }
}
