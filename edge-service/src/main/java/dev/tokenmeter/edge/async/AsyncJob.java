package dev.tokenmeter.edge.async;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.auth.ModelAllowList;
import dev.tokenmeter.edge.quota.Route;
import dev.tokenmeter.edge.responsecache.CachePolicy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One queued call (ADR 0083): what a worker needs to run it as the call it was admitted as — the caller's ids (never
 * the {@code tm_} key), the sync endpoint, the body as sent, the labels, the reservation and route the quota
 * decision made at enqueue time, and the callback URL (null for none; {@link JobCallbacks}). {@code jobId} is also the call's event id: a job run twice (a worker killed after
 * billing it) publishes the same event id twice, and the pipeline counts it once.
 *
 * <p>Carried as the fields of its stream entry ({@link #fields}, {@link #of}).
 */
public record AsyncJob(String jobId, String tenantId, String userId, String apiKeyId, String project, String endpoint,
                       String model, byte[] body, Map<String, String> labels, String reservationId, Route route,
                       Instant occurredAt, String callbackUrl) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public AsyncJob {
        Objects.requireNonNull(jobId, "jobId");
        Objects.requireNonNull(tenantId, "tenantId");
        Objects.requireNonNull(userId, "userId");
        Objects.requireNonNull(endpoint, "endpoint");
        Objects.requireNonNull(body, "body");
        labels = Map.copyOf(labels);
        Objects.requireNonNull(route, "route");
        Objects.requireNonNull(occurredAt, "occurredAt");
    }

    /**
     * The caller the job runs for: admitted at enqueue time (key, account, allow-list checked then), so it runs even if
     * the key is revoked meanwhile; no response cache for jobs.
     */
    public Caller caller() {
        return new Caller(apiKeyId, userId, tenantId, true, CachePolicy.OFF, ModelAllowList.ANY, false, project);
    }

    /** The stream entry's fields. */
    public Map<String, String> fields() {
        Map<String, String> f = new HashMap<>();
        f.put("id", jobId);
        f.put("tenant", tenantId);
        f.put("user", userId);
        f.put("key", apiKeyId);
        if (project != null) {
            f.put("project", project);
        }
        f.put("endpoint", endpoint);
        f.put("model", model);
        f.put("body", Base64.getEncoder().encodeToString(body));
        try {
            f.put("labels", JSON.writeValueAsString(labels));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (reservationId != null) {
            f.put("reservation", reservationId);
        }
        f.put("route", route.name());
        f.put("occurred_ms", Long.toString(occurredAt.toEpochMilli()));
        if (callbackUrl != null) {
            f.put("callback", callbackUrl);
        }
        return f;
    }

    /** The job from its stream entry's fields. */
    public static AsyncJob of(Map<String, String> f) {
        Map<String, String> labels;
        try {
            labels = JSON.readValue(f.getOrDefault("labels", "{}"), new TypeReference<Map<String, String>>() { });
        } catch (IOException e) {
            throw new IllegalArgumentException("job " + f.get("id") + ": labels unreadable", e);
        }
        return new AsyncJob(f.get("id"), f.get("tenant"), f.get("user"), f.get("key"), f.get("project"), f.get("endpoint"),
                f.get("model"), Base64.getDecoder().decode(f.get("body")), labels, f.get("reservation"),
                Route.valueOf(f.get("route")), Instant.ofEpochMilli(Long.parseLong(f.get("occurred_ms"))), f.get("callback"));
    }
}
