package dev.tokenmeter.edge.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.crypto.PersonalKeyCipher;
import dev.tokenmeter.edge.http.OpenAiError;
import io.javalin.http.Context;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.OffsetDateTime;

import static dev.tokenmeter.edge.admin.AdminError.bad;
import static dev.tokenmeter.edge.admin.AdminError.notFound;
import static dev.tokenmeter.edge.admin.JsonBody.JSON;

/**
 * {@code /admin/users/{userId}/personal-key}: register (sealed with the master key; the answer has the last four
 * characters only), show, delete the user's own OpenAI key. 501 on PUT when the edge has no master key.
 */
final class PersonalKeyRoutes {

    private static final Logger LOG = LoggerFactory.getLogger(PersonalKeyRoutes.class);
    private static final String PROVIDER = "openai";

    private final AdminQueries queries;
    private final PersonalKeyStore keys;
    private final PersonalKeyCipher cipher;
    private final AccountChanges changes;
    private final Clock clock;

    /** @param cipher null when personal keys are disabled (PERSONAL_KEY_MASTER_KEY not set) */
    PersonalKeyRoutes(AdminQueries queries, PersonalKeyStore keys, PersonalKeyCipher cipher, AccountChanges changes, Clock clock) {
        this.queries = queries;
        this.keys = keys;
        this.cipher = cipher;
        this.changes = changes;
        this.clock = clock;
    }

    void put(Context ctx) {
        String userId = ctx.pathParam("userId");
        UserRoutes.requireUser(queries, userId);
        if (cipher == null) {
            throw new AdminError(new OpenAiError(501, "Personal keys are disabled on this edge (PERSONAL_KEY_MASTER_KEY is not set).",
                    "invalid_request_error", null, "personal_keys_disabled", false, null));
        }
        JsonNode b = JsonBody.object(ctx);
        String key = JsonBody.requiredText(b, "key");
        if (key.length() < 8) {
            throw bad("'key' does not look like an OpenAI API key.", "key");
        }
        String last4 = key.substring(key.length() - 4);
        keys.upsert(userId, PROVIDER, cipher.seal(userId, PROVIDER, key), last4, OffsetDateTime.now(clock));
        changes.invalidate(userId);
        LOG.info("registered a personal {} key for user {} (last4 {})", PROVIDER, userId, last4);
        JsonBody.write(ctx, 200, personalKeyJson(userId));
    }

    void get(Context ctx) {
        JsonBody.write(ctx, 200, personalKeyJson(ctx.pathParam("userId")));
    }

    void delete(Context ctx) {
        String userId = ctx.pathParam("userId");
        if (!keys.delete(userId, PROVIDER)) {
            throw notFound("User '" + userId + "' has no personal key.");
        }
        changes.invalidate(userId);
        ctx.status(204);
    }

    private ObjectNode personalKeyJson(String userId) {
        var r = queries.activePersonalKey(userId, PROVIDER);
        if (r == null) {
            throw notFound("User '" + userId + "' has no personal key.");
        }
        ObjectNode n = JSON.createObjectNode();
        n.put("user_id", userId);
        n.put("provider", r.value1());
        n.put("last4", r.value2());
        n.put("created_at", r.value3().toInstant().toString());
        return n;
    }
}
