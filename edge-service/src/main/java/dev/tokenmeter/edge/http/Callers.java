package dev.tokenmeter.edge.http;

import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.edge.auth.BearerToken;
import dev.tokenmeter.edge.auth.Caller;
import io.javalin.http.Context;

import java.util.Optional;

/** The caller of a Javalin route (metering API, usage query) by its {@code tm_} key. */
public final class Callers {

    private Callers() {
    }

    /**
     * The caller, when the key is valid and unexpired and its account active; otherwise answers 401 (an expired key:
     * {@code api_key_expired}, ADR 0077) or 403
     * ({@code account_disabled}, before any other work: no event, no reservation, no marker — issue 14, finding 6)
     * and returns empty.
     */
    public static Optional<Caller> active(Context ctx, Authenticator authenticator) {
        String presented = BearerToken.from(ctx.header("Authorization"));
        Optional<Caller> caller = presented == null ? Optional.empty() : authenticator.authenticate(presented);
        if (caller.isEmpty()) {
            HttpErrors.respond(ctx, OpenAiError.invalidApiKey("Incorrect API key provided."));
            return Optional.empty();
        }
        if (caller.get().expired()) {
            HttpErrors.respond(ctx, OpenAiError.apiKeyExpired());
            return Optional.empty();
        }
        if (!caller.get().active()) {
            HttpErrors.respond(ctx, OpenAiError.accountDisabled());
            return Optional.empty();
        }
        return caller;
    }
}
