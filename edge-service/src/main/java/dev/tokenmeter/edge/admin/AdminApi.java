package dev.tokenmeter.edge.admin;

import dev.tokenmeter.edge.http.HttpErrors;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.auth.ApiKeys;
import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.edge.crypto.PersonalKeyCipher;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.pricing.PriceBook;
import dev.tokenmeter.events.UserLimit;
import dev.tokenmeter.events.money.Money;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import io.javalin.http.Handler;
import org.jooq.DSLContext;
import org.jooq.exception.IntegrityConstraintViolationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.function.Consumer;

import static dev.tokenmeter.db.jooq.Tables.ACCOUNT;
import static dev.tokenmeter.db.jooq.Tables.ACCOUNT_LIMITS;
import static dev.tokenmeter.db.jooq.Tables.API_KEY;
import static dev.tokenmeter.db.jooq.Tables.MODEL_PRICE;
import static dev.tokenmeter.db.jooq.Tables.PERSONAL_PROVIDER_KEY;
import static dev.tokenmeter.db.jooq.Tables.PLAN;

/**
 * The admin API, every route behind {@code Authorization: Bearer <ADMIN_TOKEN>} (constant-time compare; anything
 * else is 401 in OpenAI's error shape). State lives in Postgres (tables of V1/V2).
 *
 * <pre>
 * PUT    /admin/plans/{planId}                   create or update a plan
 * POST   /admin/users                            create a user
 * GET    /admin/users/{userId}                   account and effective limits
 * PATCH  /admin/users/{userId}                   status (ACTIVE/DISABLED), plan, per-user overrides
 * POST   /admin/users/{userId}/keys              issue a service key: the key is in this response only
 * GET    /admin/users/{userId}/keys              keys by prefix (never the key or its hash)
 * DELETE /admin/users/{userId}/keys/{apiKeyId}   revoke
 * PUT    /admin/users/{userId}/personal-key      register the user's own OpenAI key (sealed; answer has last4 only)
 * GET    /admin/users/{userId}/personal-key      last4 and dates
 * DELETE /admin/users/{userId}/personal-key      delete it
 * POST   /admin/model-prices                     add an effective-dated price row (append-only)
 * </pre>
 *
 * <p>Money in: {@code monthly_credit_usd} as an exact decimal string ({@code "12.50"}) or
 * {@code monthly_credit_nano_usd} as an integer; money out: both. Every change that can move a user's effective
 * credit publishes a {@link UserLimit} to the compacted user-limits topic (after the database commit) and calls
 * {@code onAccountChanged} (the quota engine's {@code AccountDirectory.invalidate}).
 */
public final class AdminApi {

    private static final Logger LOG = LoggerFactory.getLogger(AdminApi.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PROVIDER = "openai";

    private final AdminToken token;
    private final DSLContext db;
    private final Authenticator authenticator;
    private final PersonalKeyCipher cipher;
    private final PriceBook priceBook;
    private final UserLimitPublisher userLimits;
    private final Consumer<String> onAccountChanged;
    private final Clock clock;

    public AdminApi(AdminToken token, DSLContext db, Authenticator authenticator, PersonalKeyCipher cipher,
                    PriceBook priceBook, UserLimitPublisher userLimits, Consumer<String> onAccountChanged, Clock clock) {
        this.token = Objects.requireNonNull(token);
        this.db = db;
        this.authenticator = authenticator;
        this.cipher = cipher;
        this.priceBook = priceBook;
        this.userLimits = userLimits;
        this.onAccountChanged = onAccountChanged == null ? u -> { } : onAccountChanged;
        this.clock = clock;
    }

    public void routes(RoutesConfig r) {
        r.put("/admin/plans/{planId}", guarded(this::putPlan));
        r.post("/admin/users", guarded(this::createUser));
        r.get("/admin/users/{userId}", guarded(this::getUser));
        r.patch("/admin/users/{userId}", guarded(this::patchUser));
        r.post("/admin/users/{userId}/keys", guarded(this::issueKey));
        r.get("/admin/users/{userId}/keys", guarded(this::listKeys));
        r.delete("/admin/users/{userId}/keys/{apiKeyId}", guarded(this::revokeKey));
        r.put("/admin/users/{userId}/personal-key", guarded(this::putPersonalKey));
        r.get("/admin/users/{userId}/personal-key", guarded(this::getPersonalKey));
        r.delete("/admin/users/{userId}/personal-key", guarded(this::deletePersonalKey));
        r.post("/admin/model-prices", guarded(this::addModelPrice));
    }

    /** A bad request with a message for the caller. */
    static final class BadRequest extends RuntimeException {
        final OpenAiError error;

        BadRequest(OpenAiError error) {
            super(error.message(), null, false, false);
            this.error = error;
        }
    }

    static BadRequest bad(String message, String param) {
        return new BadRequest(OpenAiError.invalidRequest(message, param));
    }

    static BadRequest notFound(String message) {
        return new BadRequest(new OpenAiError(404, message, "invalid_request_error", null, "not_found", false, null));
    }

    static BadRequest conflict(String message) {
        return new BadRequest(new OpenAiError(409, message, "invalid_request_error", null, "conflict", false, null));
    }

    private Handler guarded(Handler h) {
        return ctx -> {
            if (!token.matches(ctx.header("Authorization"))) {
                HttpErrors.respond(ctx, OpenAiError.invalidApiKey("The admin API needs 'Authorization: Bearer <admin token>'."));
                return;
            }
            try {
                h.handle(ctx);
            } catch (BadRequest e) {
                HttpErrors.respond(ctx, e.error);
            } catch (IntegrityConstraintViolationException e) {
                HttpErrors.respond(ctx, conflict("The change conflicts with existing data: " + firstLine(e.getMessage())).error);
            } catch (UserLimitUnpublished e) {
                HttpErrors.respond(ctx, OpenAiError.unavailable(e.getMessage(), Duration.ofSeconds(5)));
            }
        };
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int i = s.indexOf('\n');
        return i < 0 ? s : s.substring(0, i);
    }

    private static JsonNode body(Context ctx) {
        try {
            JsonNode n = JSON.readTree(ctx.bodyAsBytes());
            if (n == null || !n.isObject()) {
                throw bad("The body must be a JSON object.", null);
            }
            return n;
        } catch (java.io.IOException e) {
            throw bad("The body is not valid JSON.", null);
        }
    }

    private static void json(Context ctx, int status, JsonNode node) {
        ctx.status(status).contentType("application/json").result(node.toString());
    }

    private static String requiredText(JsonNode b, String field) {
        JsonNode n = b.get(field);
        if (n == null || !n.isTextual() || n.asText().isBlank()) {
            throw bad("'" + field + "' is required (a non-empty string).", field);
        }
        return n.asText().strip();
    }

    /**
     * Money from {@code <prefix>_usd} (exact decimal string) or {@code <prefix>_nano_usd} (integer); null when
     * neither is present; {@code present[0]} tells whether either field was given (an explicit null clears).
     */
    static Long money(JsonNode b, String prefix, boolean[] present) {
        JsonNode usd = b.get(prefix + "_usd");
        JsonNode nano = b.get(prefix + "_nano_usd");
        present[0] = usd != null || nano != null;
        if (usd != null && nano != null && !usd.isNull() && !nano.isNull()) {
            throw bad("Give either '" + prefix + "_usd' or '" + prefix + "_nano_usd', not both.", prefix + "_usd");
        }
        long value;
        if (usd != null && !usd.isNull()) {
            if (!usd.isTextual()) {
                throw bad("'" + prefix + "_usd' must be a decimal string such as \"12.50\" (no floating point for money).", prefix + "_usd");
            }
            try {
                value = Money.parseUsd(usd.asText());
            } catch (IllegalArgumentException | ArithmeticException e) {
                throw bad("'" + prefix + "_usd': " + e.getMessage(), prefix + "_usd");
            }
        } else if (nano != null && !nano.isNull()) {
            if (!nano.isIntegralNumber() || !nano.canConvertToLong()) {
                throw bad("'" + prefix + "_nano_usd' must be an integer.", prefix + "_nano_usd");
            }
            value = nano.asLong();
        } else {
            return null;
        }
        if (value < 0) {
            throw bad("'" + prefix + "' must not be negative.", prefix + "_usd");
        }
        return value;
    }

    private static Long positiveLong(JsonNode b, String field, boolean[] present) {
        JsonNode n = b.get(field);
        present[0] = n != null;
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isIntegralNumber() || !n.canConvertToLong() || n.asLong() <= 0) {
            throw bad("'" + field + "' must be a positive integer.", field);
        }
        return n.asLong();
    }

    // ---- plans ----

    private void putPlan(Context ctx) {
        String planId = ctx.pathParam("planId");
        JsonNode b = body(ctx);
        boolean[] p = new boolean[1];
        Long credit = money(b, "monthly_credit", p);
        Long rpm = positiveLong(b, "requests_per_minute", p);
        Long tpm = positiveLong(b, "tokens_per_minute", p);
        Long soft = positiveLong(b, "soft_limit_percent", p);
        if (soft != null && soft > 100) {
            throw bad("'soft_limit_percent' must be between 1 and 100.", "soft_limit_percent");
        }
        if (rpm != null && rpm > Integer.MAX_VALUE) {
            throw bad("'requests_per_minute' is too large.", "requests_per_minute");
        }
        String name = b.hasNonNull("display_name") ? b.get("display_name").asText() : planId;
        boolean exists = db.fetchExists(PLAN, PLAN.PLAN_ID.eq(planId));
        if (!exists) {
            if (credit == null || rpm == null || tpm == null) {
                throw bad("A new plan needs monthly_credit_usd (or monthly_credit_nano_usd), requests_per_minute and tokens_per_minute.", null);
            }
            db.insertInto(PLAN).set(PLAN.PLAN_ID, planId).set(PLAN.DISPLAY_NAME, name)
                    .set(PLAN.MONTHLY_CREDIT_NANO_USD, credit).set(PLAN.REQUESTS_PER_MINUTE, rpm.intValue())
                    .set(PLAN.TOKENS_PER_MINUTE, tpm).set(PLAN.SOFT_LIMIT_PERCENT, soft == null ? 80 : soft.intValue())
                    .execute();
        } else {
            var u = db.update(PLAN).set(PLAN.PLAN_ID, planId);
            if (b.hasNonNull("display_name")) {
                u = u.set(PLAN.DISPLAY_NAME, name);
            }
            if (credit != null) {
                u = u.set(PLAN.MONTHLY_CREDIT_NANO_USD, credit);
            }
            if (rpm != null) {
                u = u.set(PLAN.REQUESTS_PER_MINUTE, rpm.intValue());
            }
            if (tpm != null) {
                u = u.set(PLAN.TOKENS_PER_MINUTE, tpm);
            }
            if (soft != null) {
                u = u.set(PLAN.SOFT_LIMIT_PERCENT, soft.intValue());
            }
            u.where(PLAN.PLAN_ID.eq(planId)).execute();
        }
        // Every user of the plan whose credit comes from it (no override) may have a new effective credit.
        List<String> users = db.select(ACCOUNT.USER_ID).from(ACCOUNT)
                .where(ACCOUNT.PLAN_ID.eq(planId)).fetch(ACCOUNT.USER_ID);
        users.forEach(this::accountChanged);
        json(ctx, exists ? 200 : 201, planJson(planId));
    }

    private ObjectNode planJson(String planId) {
        var r = db.selectFrom(PLAN).where(PLAN.PLAN_ID.eq(planId)).fetchOne();
        ObjectNode n = JSON.createObjectNode();
        n.put("plan_id", r.getPlanId());
        n.put("display_name", r.getDisplayName());
        n.put("monthly_credit_nano_usd", r.getMonthlyCreditNanoUsd());
        n.put("monthly_credit_usd", Money.formatUsd(r.getMonthlyCreditNanoUsd()));
        n.put("requests_per_minute", r.getRequestsPerMinute());
        n.put("tokens_per_minute", r.getTokensPerMinute());
        n.put("soft_limit_percent", r.getSoftLimitPercent());
        return n;
    }

    // ---- users ----

    private void createUser(Context ctx) {
        JsonNode b = body(ctx);
        String userId = requiredText(b, "user_id");
        String tenantId = requiredText(b, "tenant_id");
        String planId = requiredText(b, "plan_id");
        if (!db.fetchExists(PLAN, PLAN.PLAN_ID.eq(planId))) {
            throw bad("Plan '" + planId + "' does not exist.", "plan_id");
        }
        boolean[] p = new boolean[1];
        Long credit = money(b, "monthly_credit_override", p);
        Long rpm = positiveLong(b, "requests_per_minute_override", p);
        Long tpm = positiveLong(b, "tokens_per_minute_override", p);
        int inserted = db.insertInto(ACCOUNT).set(ACCOUNT.USER_ID, userId).set(ACCOUNT.TENANT_ID, tenantId)
                .set(ACCOUNT.PLAN_ID, planId).set(ACCOUNT.MONTHLY_CREDIT_OVERRIDE_NANO_USD, credit)
                .set(ACCOUNT.REQUESTS_PER_MINUTE_OVERRIDE, rpm == null ? null : rpm.intValue())
                .set(ACCOUNT.TOKENS_PER_MINUTE_OVERRIDE, tpm)
                .onConflictDoNothing().execute();
        if (inserted == 0) {
            throw conflict("User '" + userId + "' exists already.");
        }
        accountChanged(userId);
        json(ctx, 201, userJson(userId));
    }

    private void getUser(Context ctx) {
        json(ctx, 200, userJson(ctx.pathParam("userId")));
    }

    private void patchUser(Context ctx) {
        String userId = ctx.pathParam("userId");
        requireUser(userId);
        JsonNode b = body(ctx);
        var u = db.update(ACCOUNT).set(ACCOUNT.UPDATED_AT, OffsetDateTime.now(clock));
        if (b.has("status")) {
            String status = b.get("status").asText("");
            if (!status.equals("ACTIVE") && !status.equals("DISABLED")) {
                throw bad("'status' must be ACTIVE or DISABLED.", "status");
            }
            u = u.set(ACCOUNT.STATUS, status);
            // Cached key lookups carry the account's status: this edge refuses a disabled account's keys at once.
            authenticator.invalidateAll();
        }
        if (b.hasNonNull("plan_id")) {
            String planId = b.get("plan_id").asText();
            if (!db.fetchExists(PLAN, PLAN.PLAN_ID.eq(planId))) {
                throw bad("Plan '" + planId + "' does not exist.", "plan_id");
            }
            u = u.set(ACCOUNT.PLAN_ID, planId);
        }
        boolean[] p = new boolean[1];
        Long credit = money(b, "monthly_credit_override", p);
        if (p[0]) {
            u = u.set(ACCOUNT.MONTHLY_CREDIT_OVERRIDE_NANO_USD, credit);
        }
        Long rpm = positiveLong(b, "requests_per_minute_override", p);
        if (p[0]) {
            u = u.set(ACCOUNT.REQUESTS_PER_MINUTE_OVERRIDE, rpm == null ? null : rpm.intValue());
        }
        Long tpm = positiveLong(b, "tokens_per_minute_override", p);
        if (p[0]) {
            u = u.set(ACCOUNT.TOKENS_PER_MINUTE_OVERRIDE, tpm);
        }
        u.where(ACCOUNT.USER_ID.eq(userId)).execute();
        accountChanged(userId);
        json(ctx, 200, userJson(userId));
    }

    private void requireUser(String userId) {
        if (!db.fetchExists(ACCOUNT, ACCOUNT.USER_ID.eq(userId))) {
            throw notFound("No user '" + userId + "'.");
        }
    }

    private ObjectNode userJson(String userId) {
        var a = db.selectFrom(ACCOUNT).where(ACCOUNT.USER_ID.eq(userId)).fetchOne();
        if (a == null) {
            throw notFound("No user '" + userId + "'.");
        }
        var l = db.selectFrom(ACCOUNT_LIMITS).where(ACCOUNT_LIMITS.USER_ID.eq(userId)).fetchOne();
        ObjectNode n = JSON.createObjectNode();
        n.put("user_id", a.getUserId());
        n.put("tenant_id", a.getTenantId());
        n.put("plan_id", a.getPlanId());
        n.put("status", a.getStatus());
        ObjectNode o = n.putObject("overrides");
        putNullable(o, "monthly_credit_nano_usd", a.getMonthlyCreditOverrideNanoUsd());
        putNullable(o, "requests_per_minute", a.getRequestsPerMinuteOverride() == null ? null : a.getRequestsPerMinuteOverride().longValue());
        putNullable(o, "tokens_per_minute", a.getTokensPerMinuteOverride());
        ObjectNode e = n.putObject("effective");
        e.put("monthly_credit_nano_usd", l.getMonthlyCreditNanoUsd());
        e.put("monthly_credit_usd", Money.formatUsd(l.getMonthlyCreditNanoUsd()));
        e.put("requests_per_minute", l.getRequestsPerMinute());
        e.put("tokens_per_minute", l.getTokensPerMinute());
        return n;
    }

    private static void putNullable(ObjectNode n, String field, Long v) {
        if (v == null) {
            n.putNull(field);
        } else {
            n.put(field, v);
        }
    }

    /** Publishes the user's effective credit to user-limits, then drops cached account state. */
    private void accountChanged(String userId) {
        var l = db.selectFrom(ACCOUNT_LIMITS).where(ACCOUNT_LIMITS.USER_ID.eq(userId)).fetchOne();
        onAccountChanged.accept(userId);
        if (l == null || userLimits == null) {
            return;
        }
        try {
            userLimits.publish(UserLimit.newBuilder().setUserId(userId).setTenantId(l.getTenantId())
                    .setMonthlyCreditNanoUsd(l.getMonthlyCreditNanoUsd()).setUpdatedAt(clock.instant()).build());
        } catch (RuntimeException e) {
            LOG.error("user limit of {} not published: {}", userId, e.getMessage());
            throw new UserLimitUnpublished("The change is saved, but the new limit could not be published to Kafka; "
                    + "repeat the same request to publish it.");
        }
    }

    static final class UserLimitUnpublished extends RuntimeException {
        UserLimitUnpublished(String message) {
            super(message, null, false, false);
        }
    }

    // ---- service API keys ----

    private void issueKey(Context ctx) {
        String userId = ctx.pathParam("userId");
        requireUser(userId);
        ApiKeys.IssuedKey issued = ApiKeys.issue();
        String apiKeyId = "key_" + UUID.randomUUID().toString().replace("-", "");
        db.insertInto(API_KEY).set(API_KEY.API_KEY_ID, apiKeyId).set(API_KEY.USER_ID, userId)
                .set(API_KEY.KEY_PREFIX, issued.prefix()).set(API_KEY.SALT, issued.salt()).set(API_KEY.KEY_HASH, issued.hash())
                .execute();
        LOG.info("issued service key {} (prefix {}) for user {}", apiKeyId, issued.prefix(), userId);
        ObjectNode n = JSON.createObjectNode();
        n.put("api_key_id", apiKeyId);
        n.put("user_id", userId);
        n.put("prefix", issued.prefix());
        n.put("key", issued.key());
        n.put("note", "The key is shown only in this response; it is stored as a salted hash.");
        ctx.header("Cache-Control", "no-store");
        json(ctx, 201, n);
    }

    private void listKeys(Context ctx) {
        String userId = ctx.pathParam("userId");
        requireUser(userId);
        ArrayNode keys = JSON.createArrayNode();
        db.selectFrom(API_KEY).where(API_KEY.USER_ID.eq(userId)).orderBy(API_KEY.CREATED_AT).fetch().forEach(k -> {
            ObjectNode n = keys.addObject();
            n.put("api_key_id", k.getApiKeyId());
            n.put("prefix", ApiKeys.SCHEME + k.getKeyPrefix() + "_…");
            n.put("created_at", k.getCreatedAt().toInstant().toString());
            if (k.getRevokedAt() == null) {
                n.putNull("revoked_at");
            } else {
                n.put("revoked_at", k.getRevokedAt().toInstant().toString());
            }
        });
        ObjectNode n = JSON.createObjectNode();
        n.set("data", keys);
        json(ctx, 200, n);
    }

    private void revokeKey(Context ctx) {
        String userId = ctx.pathParam("userId");
        String apiKeyId = ctx.pathParam("apiKeyId");
        int updated = db.update(API_KEY).set(API_KEY.REVOKED_AT, OffsetDateTime.now(clock))
                .where(API_KEY.API_KEY_ID.eq(apiKeyId)).and(API_KEY.USER_ID.eq(userId)).and(API_KEY.REVOKED_AT.isNull())
                .execute();
        if (updated == 0 && !db.fetchExists(API_KEY, API_KEY.API_KEY_ID.eq(apiKeyId).and(API_KEY.USER_ID.eq(userId)))) {
            throw notFound("User '" + userId + "' has no key '" + apiKeyId + "'.");
        }
        // This edge forgets at once; other edges within their API_KEY_CACHE_TTL.
        authenticator.invalidateAll();
        LOG.info("revoked service key {} of user {}", apiKeyId, userId);
        ObjectNode n = JSON.createObjectNode();
        n.put("api_key_id", apiKeyId);
        n.put("revoked", true);
        json(ctx, 200, n);
    }

    // ---- personal OpenAI key ----

    private void putPersonalKey(Context ctx) {
        String userId = ctx.pathParam("userId");
        requireUser(userId);
        if (cipher == null) {
            throw new BadRequest(new OpenAiError(501, "Personal keys are disabled on this edge (PERSONAL_KEY_MASTER_KEY is not set).",
                    "invalid_request_error", null, "personal_keys_disabled", false, null));
        }
        JsonNode b = body(ctx);
        String key = requiredText(b, "key");
        if (key.length() < 8) {
            throw bad("'key' does not look like an OpenAI API key.", "key");
        }
        PersonalKeyCipher.Sealed sealed = cipher.seal(userId, PROVIDER, key);
        String last4 = key.substring(key.length() - 4);
        db.insertInto(PERSONAL_PROVIDER_KEY).set(PERSONAL_PROVIDER_KEY.USER_ID, userId)
                .set(PERSONAL_PROVIDER_KEY.PROVIDER, PROVIDER)
                .set(PERSONAL_PROVIDER_KEY.KEY_CIPHERTEXT, sealed.ciphertext()).set(PERSONAL_PROVIDER_KEY.KEY_NONCE, sealed.nonce())
                .set(PERSONAL_PROVIDER_KEY.MASTER_KEY_ID, sealed.masterKeyId()).set(PERSONAL_PROVIDER_KEY.KEY_LAST4, last4)
                .onConflict(PERSONAL_PROVIDER_KEY.USER_ID, PERSONAL_PROVIDER_KEY.PROVIDER).doUpdate()
                .set(PERSONAL_PROVIDER_KEY.KEY_CIPHERTEXT, sealed.ciphertext()).set(PERSONAL_PROVIDER_KEY.KEY_NONCE, sealed.nonce())
                .set(PERSONAL_PROVIDER_KEY.MASTER_KEY_ID, sealed.masterKeyId()).set(PERSONAL_PROVIDER_KEY.KEY_LAST4, last4)
                .set(PERSONAL_PROVIDER_KEY.CREATED_AT, OffsetDateTime.now(clock))
                .setNull(PERSONAL_PROVIDER_KEY.REVOKED_AT)
                .execute();
        onAccountChanged.accept(userId);
        LOG.info("registered a personal {} key for user {} (last4 {})", PROVIDER, userId, last4);
        json(ctx, 200, personalKeyJson(userId));
    }

    private void getPersonalKey(Context ctx) {
        json(ctx, 200, personalKeyJson(ctx.pathParam("userId")));
    }

    private ObjectNode personalKeyJson(String userId) {
        var r = db.select(PERSONAL_PROVIDER_KEY.PROVIDER, PERSONAL_PROVIDER_KEY.KEY_LAST4, PERSONAL_PROVIDER_KEY.CREATED_AT)
                .from(PERSONAL_PROVIDER_KEY)
                .where(PERSONAL_PROVIDER_KEY.USER_ID.eq(userId)).and(PERSONAL_PROVIDER_KEY.PROVIDER.eq(PROVIDER))
                .and(PERSONAL_PROVIDER_KEY.REVOKED_AT.isNull()).fetchOne();
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

    private void deletePersonalKey(Context ctx) {
        String userId = ctx.pathParam("userId");
        int deleted = db.deleteFrom(PERSONAL_PROVIDER_KEY).where(PERSONAL_PROVIDER_KEY.USER_ID.eq(userId))
                .and(PERSONAL_PROVIDER_KEY.PROVIDER.eq(PROVIDER)).execute();
        if (deleted == 0) {
            throw notFound("User '" + userId + "' has no personal key.");
        }
        onAccountChanged.accept(userId);
        ctx.status(204);
    }

    // ---- model prices ----

    private void addModelPrice(Context ctx) {
        JsonNode b = body(ctx);
        String model = requiredText(b, "model");
        Instant effectiveFrom;
        try {
            effectiveFrom = Instant.parse(requiredText(b, "effective_from"));
        } catch (DateTimeParseException e) {
            throw bad("'effective_from' must be an ISO-8601 instant such as 2026-01-01T00:00:00Z.", "effective_from");
        }
        // A row effective in the past would re-price calls already billed; prices only change from now on.
        if (effectiveFrom.isBefore(clock.instant().minusSeconds(60))) {
            throw bad("'effective_from' must not be in the past: prices change from now on, billed calls keep theirs.", "effective_from");
        }
        Long input = nonNegative(b, "input_nano_usd_per_token", true);
        Long cached = nonNegative(b, "cached_input_nano_usd_per_token", false);
        Long output = nonNegative(b, "output_nano_usd_per_token", false);
        String version = b.hasNonNull("price_version") ? b.get("price_version").asText()
                : model + "@" + effectiveFrom;
        int inserted = db.insertInto(MODEL_PRICE).set(MODEL_PRICE.MODEL, model)
                .set(MODEL_PRICE.EFFECTIVE_FROM, OffsetDateTime.ofInstant(effectiveFrom, ZoneOffset.UTC))
                .set(MODEL_PRICE.INPUT_NANO_USD_PER_TOKEN, input)
                .set(MODEL_PRICE.CACHED_INPUT_NANO_USD_PER_TOKEN, cached)
                .set(MODEL_PRICE.OUTPUT_NANO_USD_PER_TOKEN, output)
                .set(MODEL_PRICE.PRICE_VERSION, version)
                .onConflictDoNothing().execute();
        if (inserted == 0) {
            throw conflict("A price row for '" + model + "' at " + effectiveFrom + " (or price_version '" + version
                    + "') exists already; rows are append-only.");
        }
        priceBook.reload();
        ObjectNode n = JSON.createObjectNode();
        n.put("model", model);
        n.put("effective_from", effectiveFrom.toString());
        n.put("input_nano_usd_per_token", input);
        putNullable(n, "cached_input_nano_usd_per_token", cached);
        putNullable(n, "output_nano_usd_per_token", output);
        n.put("price_version", version);
        json(ctx, 201, n);
    }

    private static Long nonNegative(JsonNode b, String field, boolean required) {
        JsonNode n = b.get(field);
        if (n == null || n.isNull()) {
            if (required) {
                throw bad("'" + field + "' is required (integer nano-USD per token).", field);
            }
            return null;
        }
        if (!n.isIntegralNumber() || !n.canConvertToLong() || n.asLong() < 0) {
            throw bad("'" + field + "' must be a non-negative integer (nano-USD per token).", field);
        }
        return n.asLong();
    }
}
