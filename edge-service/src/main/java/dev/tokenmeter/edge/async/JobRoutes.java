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

    public JobRoutes(Authenticator authenticator, JobStore store) {
        this.authenticator = authenticator;
        this.store = store;
    }

    public void routes(RoutesConfig routes) {
        routes.get("/v1/async/jobs/{id}", this::get);
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
