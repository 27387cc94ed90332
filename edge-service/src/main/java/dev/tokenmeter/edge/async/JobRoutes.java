package dev.tokenmeter.edge.async;

import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.http.Callers;
import dev.tokenmeter.edge.http.HttpErrors;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.proxy.AsyncJobJson;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

import java.util.Map;
import java.util.regex.Pattern;

/**
 * {@code GET /v1/async/jobs/{id}} (ADR 0083): a job's status and, once it ended, its answer — to its own user only.
 * Another user's job, an expired one, and an id that is not a job id (a UUID) all answer the same 404.
 */
public final class JobRoutes {

    /** A job id is the UUID of its call's event: 36 characters. Anything else is not looked up. */
    private static final Pattern JOB_ID = Pattern.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");

    private final Authenticator authenticator;
    private final JobStore store;
    /** Null when callbacks are off. */
    private final JobCallbacks callbacks;

    public JobRoutes(Authenticator authenticator, JobStore store, JobCallbacks callbacks) {
        this.authenticator = authenticator;
        this.store = store;
        this.callbacks = callbacks;
    }

    public void routes(RoutesConfig routes) {
        routes.get("/v1/async/jobs/{id}", this::get);
        routes.get("/v1/async/callback-secret", this::callbackSecret);
    }

    /** The secret this key's job callbacks are signed with ({@link JobCallbacks}); 404 when callbacks are off. */
    private void callbackSecret(Context ctx) {
        Caller caller = Callers.active(ctx, authenticator).orElse(null);
        if (caller == null) {
            return;
        }
        if (callbacks == null) {
            HttpErrors.respond(ctx, new OpenAiError(404, "Callbacks are not enabled at this edge.", "invalid_request_error", null,
                    "callbacks_disabled", false, null));
            return;
        }
        ctx.contentType("application/json").result("{\"object\":\"async.callback_secret\",\"secret\":\""
                + callbacks.secretFor(caller.apiKeyId()) + "\"}");
    }

    private void get(Context ctx) {
        Caller caller = Callers.active(ctx, authenticator).orElse(null);
        if (caller == null) {
            return;
        }
        String id = ctx.pathParam("id");
        Map<String, String> state = JOB_ID.matcher(id).matches() ? store.state(caller.tenantId(), id) : Map.of();
        if (state.isEmpty() || !caller.userId().equals(state.get("user"))) {
            HttpErrors.respond(ctx, new OpenAiError(404, "No async job with that id.", "invalid_request_error", "id",
                    "job_not_found", false, null));
            return;
        }
        ctx.contentType("application/json").result(AsyncJobJson.of(id, state));
    }
}
