package dev.tokenmeter.edge.admin;

import dev.tokenmeter.edge.auth.Authenticator;
import dev.tokenmeter.edge.crypto.PersonalKeyCipher;
import dev.tokenmeter.edge.http.HttpErrors;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.pricing.PriceBook;
import dev.tokenmeter.events.UserLimit;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Handler;
import org.jooq.DSLContext;
import org.jooq.exception.IntegrityConstraintViolationException;

import java.time.Clock;
import java.time.Duration;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * The admin API, every route behind {@code Authorization: Bearer <ADMIN_TOKEN>} (constant-time compare; anything
 * else is 401 in OpenAI's error shape). State lives in Postgres (tables of V1/V2).
 *
 * <pre>
 * PUT    /admin/plans/{planId}                   create or update a plan                          {@link PlanRoutes}
 * POST   /admin/users                            create a user                                    {@link UserRoutes}
 * GET    /admin/users/{userId}                   account and effective limits
 * PATCH  /admin/users/{userId}                   status (ACTIVE/DISABLED), plan, per-user overrides
 * POST   /admin/users/{userId}/keys              issue a service key: the key is in this response only  {@link ServiceKeyRoutes}
 * GET    /admin/users/{userId}/keys              keys by prefix (never the key or its hash)
 * PATCH  /admin/users/{userId}/keys/{apiKeyId}   the key's limits: allowed_models, expires_at (ADR 0077)
 * DELETE /admin/users/{userId}/keys/{apiKeyId}   revoke
 * PUT    /admin/users/{userId}/keys/{apiKeyId}/project   {"project": "support-bot"} or null: the key's project (ADR 0078)
 * PUT    /admin/users/{userId}/personal-key      register the user's own OpenAI key (sealed; answer has last4 only)  {@link PersonalKeyRoutes}
 * GET    /admin/users/{userId}/personal-key      last4 and dates
 * DELETE /admin/users/{userId}/personal-key      delete it
 * POST   /admin/model-prices                     add an effective-dated price row (append-only)   {@link ModelPriceRoutes}
 * POST   /admin/model-aliases                    add an effective-dated model alias (append-only) {@link ModelPriceRoutes}
 * PUT    /admin/tenants/{tenantId}/budget        the tenant's shared monthly budget (ADR 0081)   {@link TenantBudgetRoutes}
 * GET    /admin/tenants/{tenantId}/budget
 * DELETE /admin/tenants/{tenantId}/budget
 * </pre>
 *
 * <p>Each resource's routes are one class over a small jOOQ store for its writes ({@link PlanStore},
 * {@link AccountStore}, {@link ServiceKeyStore}, {@link PersonalKeyStore}, {@link ModelPriceStore}); every read is in
 * {@link AdminQueries}; the bodies are checked by {@link JsonBody}. This class builds them and guards every route:
 * the token check, and the mapping of refusals to answers ({@link AdminError} as it says, a constraint violation
 * 409, an unpublished user limit 503).
 *
 * <p>Money in: {@code monthly_credit_usd} as an exact decimal string ({@code "12.50"}) or
 * {@code monthly_credit_nano_usd} as an integer; money out: both. Every change that can move a user's effective
 * credit publishes a {@link UserLimit} to the compacted user-limits topic (after the database commit) and calls
 * {@code onAccountChanged} (the quota engine's {@code AccountDirectory.invalidate}): {@link AccountChanges}.
 */
public final class AdminApi {

    private final AdminToken token;
    private final PlanRoutes plans;
    private final UserRoutes users;
    private final ServiceKeyRoutes serviceKeys;
    private final PersonalKeyRoutes personalKeys;
    private final ModelPriceRoutes modelPrices;
    private final TenantBudgetRoutes tenantBudgets;

    /**
     * @param cipher           null when personal keys are disabled
     * @param userLimits       null: no user limit is published
     * @param onAccountChanged null: nothing to invalidate
     */
    public AdminApi(AdminToken token, DSLContext db, Authenticator authenticator, PersonalKeyCipher cipher,
                    PriceBook priceBook, UserLimitPublisher userLimits, Consumer<String> onAccountChanged, Clock clock) {
        this(token, db, authenticator, cipher, priceBook, userLimits, onAccountChanged, null, clock);
    }

    /**
     * @param onTenantBudgetChanged null: nothing to invalidate (else the quota gate's {@code tenantBudgetChanged}: the
     *                              tenant, and whether its budget was created or removed)
     */
    public AdminApi(AdminToken token, DSLContext db, Authenticator authenticator, PersonalKeyCipher cipher,
                    PriceBook priceBook, UserLimitPublisher userLimits, Consumer<String> onAccountChanged,
                    java.util.function.BiConsumer<String, Boolean> onTenantBudgetChanged, Clock clock) {
        this.token = Objects.requireNonNull(token);
        AdminQueries queries = new AdminQueries(db);
        AccountChanges changes = new AccountChanges(queries, userLimits, onAccountChanged, clock);
        this.plans = new PlanRoutes(queries, new PlanStore(db), changes, authenticator);
        this.users = new UserRoutes(queries, new AccountStore(db), changes, authenticator, clock);
        this.serviceKeys = new ServiceKeyRoutes(queries, new ServiceKeyStore(db), authenticator, clock);
        this.personalKeys = new PersonalKeyRoutes(queries, new PersonalKeyStore(db), cipher, changes, clock);
        this.modelPrices = new ModelPriceRoutes(new ModelPriceStore(db), priceBook, clock);
        this.tenantBudgets = new TenantBudgetRoutes(db, onTenantBudgetChanged, clock);
    }

    public void routes(RoutesConfig r) {
        r.put("/admin/plans/{planId}", guarded(plans::put));
        r.post("/admin/users", guarded(users::create));
        r.get("/admin/users/{userId}", guarded(users::get));
        r.patch("/admin/users/{userId}", guarded(users::patch));
        r.post("/admin/users/{userId}/keys", guarded(serviceKeys::issue));
        r.get("/admin/users/{userId}/keys", guarded(serviceKeys::list));
        r.patch("/admin/users/{userId}/keys/{apiKeyId}", guarded(serviceKeys::patch));
        r.delete("/admin/users/{userId}/keys/{apiKeyId}", guarded(serviceKeys::revoke));
        r.put("/admin/users/{userId}/keys/{apiKeyId}/project", guarded(serviceKeys::project));
        r.put("/admin/users/{userId}/personal-key", guarded(personalKeys::put));
        r.get("/admin/users/{userId}/personal-key", guarded(personalKeys::get));
        r.delete("/admin/users/{userId}/personal-key", guarded(personalKeys::delete));
        r.post("/admin/model-prices", guarded(modelPrices::add));
        r.post("/admin/model-aliases", guarded(modelPrices::addAlias));
        r.put("/admin/tenants/{tenantId}/budget", guarded(tenantBudgets::put));
        r.get("/admin/tenants/{tenantId}/budget", guarded(tenantBudgets::get));
        r.delete("/admin/tenants/{tenantId}/budget", guarded(tenantBudgets::delete));
    }

    private Handler guarded(Handler h) {
        return ctx -> {
            if (!token.matches(ctx.header("Authorization"))) {
                HttpErrors.respond(ctx, OpenAiError.invalidApiKey("The admin API needs 'Authorization: Bearer <admin token>'."));
                return;
            }
            try {
                h.handle(ctx);
            } catch (AdminError e) {
                HttpErrors.respond(ctx, e.error);
            } catch (IntegrityConstraintViolationException e) {
                HttpErrors.respond(ctx, AdminError.conflict("The change conflicts with existing data: " + firstLine(e.getMessage())).error);
            } catch (AccountChanges.Unpublished e) {
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
}
