package dev.tokenmeter.notifier.webhook;

import dev.tokenmeter.db.jooq.tables.records.WebhookRecord;
import org.jooq.DSLContext;
import org.jooq.impl.DSL;

import java.time.OffsetDateTime;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

import static dev.tokenmeter.db.jooq.Tables.WEBHOOK;

/** The {@code webhook} table: what the admin API writes and the deliveries read (each attempt reads it afresh). */
public final class WebhookStore {

    private final DSLContext db;

    public WebhookStore(DSLContext db) {
        this.db = db;
    }

    /** The tenant's enabled webhooks. */
    public List<Webhook> enabledFor(String tenantId) {
        return db.selectFrom(WEBHOOK).where(WEBHOOK.TENANT_ID.eq(tenantId)).and(WEBHOOK.ENABLED.isTrue())
                .orderBy(WEBHOOK.CREATED_AT, WEBHOOK.WEBHOOK_ID).fetch(WebhookStore::of);
    }

    public Optional<Webhook> get(UUID id) {
        return db.selectFrom(WEBHOOK).where(WEBHOOK.WEBHOOK_ID.eq(id)).fetchOptional(WebhookStore::of);
    }

    /** A tenant's webhooks, or every webhook when {@code tenantId} is null; at most {@code limit}. */
    public List<Webhook> list(String tenantId, int limit) {
        return db.selectFrom(WEBHOOK).where(tenantId == null ? DSL.noCondition() : WEBHOOK.TENANT_ID.eq(tenantId))
                .orderBy(WEBHOOK.CREATED_AT, WEBHOOK.WEBHOOK_ID).limit(limit).fetch(WebhookStore::of);
    }

    public Webhook create(String tenantId, String url, String secret, Webhook.Format format, boolean enabled) {
        return of(db.insertInto(WEBHOOK)
                .set(WEBHOOK.TENANT_ID, tenantId).set(WEBHOOK.URL, url).set(WEBHOOK.SECRET, secret)
                .set(WEBHOOK.FORMAT, format.wireName()).set(WEBHOOK.ENABLED, enabled)
                .returning().fetchOne());
    }

    /** Changes what is not null; empty when there is no such webhook. */
    public Optional<Webhook> update(UUID id, String url, String secret, Webhook.Format format, Boolean enabled) {
        var update = db.update(WEBHOOK).set(WEBHOOK.UPDATED_AT, OffsetDateTime.now());
        if (url != null) {
            update = update.set(WEBHOOK.URL, url);
        }
        if (secret != null) {
            update = update.set(WEBHOOK.SECRET, secret);
        }
        if (format != null) {
            update = update.set(WEBHOOK.FORMAT, format.wireName());
        }
        if (enabled != null) {
            update = update.set(WEBHOOK.ENABLED, enabled);
        }
        return update.where(WEBHOOK.WEBHOOK_ID.eq(id)).returning().fetchOptional().map(WebhookStore::of);
    }

    private static Webhook of(WebhookRecord r) {
        return new Webhook(r.getWebhookId(), r.getTenantId(), r.getUrl(), r.getSecret(), Webhook.Format.of(r.getFormat()),
                r.getEnabled());
    }
}
