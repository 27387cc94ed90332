package dev.tokenmeter.edge.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.admin.ModelPriceStore.AliasRow;
import dev.tokenmeter.edge.admin.ModelPriceStore.PriceRow;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.PriceBook;
import dev.tokenmeter.edge.pricing.ServiceTier;
import dev.tokenmeter.events.validate.UsageEventBounds;
import io.javalin.http.Context;

import java.time.Clock;
import java.time.Instant;
import java.time.format.DateTimeParseException;

import static dev.tokenmeter.edge.admin.AdminError.bad;
import static dev.tokenmeter.edge.admin.AdminError.conflict;
import static dev.tokenmeter.edge.admin.JsonBody.JSON;

/**
 * {@code POST /admin/model-prices}: append an effective-dated price row of a service tier (201; 409 when the model has
 * one in that tier at that instant or the version exists); {@code POST /admin/model-aliases}: append an effective-dated
 * alias (201; 409 when the alias has a row at that instant). Each then reloads this edge's {@link PriceBook}.
 */
final class ModelPriceRoutes {

    /** How far in the past {@code effective_from} may lie (clock skew between the caller and this edge). */
    static final long PAST_TOLERANCE_SECONDS = 60;

    private final ModelPriceStore prices;
    private final PriceBook priceBook;
    private final Clock clock;

    ModelPriceRoutes(ModelPriceStore prices, PriceBook priceBook, Clock clock) {
        this.prices = prices;
        this.priceBook = priceBook;
        this.clock = clock;
    }

    void add(Context ctx) {
        PriceRow p = row(JsonBody.object(ctx), clock.instant());
        if (!prices.append(p)) {
            throw conflict("A price row for '" + p.model() + "' at " + p.effectiveFrom() + " (or price_version '"
                    + p.priceVersion() + "') exists already; rows are append-only.");
        }
        priceBook.reload();
        ObjectNode n = JSON.createObjectNode();
        n.put("model", p.model());
        n.put("service_tier", p.tier().dbName());
        n.put("effective_from", p.effectiveFrom().toString());
        n.put("input_nano_usd_per_token", p.inputNanoUsdPerToken());
        JsonBody.putNullable(n, "cached_input_nano_usd_per_token", p.cachedInputNanoUsdPerToken());
        JsonBody.putNullable(n, "output_nano_usd_per_token", p.outputNanoUsdPerToken());
        n.put("price_divisor", p.priceDivisor());
        n.put("price_version", p.priceVersion());
        JsonBody.write(ctx, 201, n);
    }

    void addAlias(Context ctx) {
        AliasRow a = alias(JsonBody.object(ctx), clock.instant());
        if (!prices.hasPrices(a.model())) {
            throw bad("Model '" + a.model() + "' has no price row; an alias must name a priced model (no chains).", "model");
        }
        if (!prices.appendAlias(a)) {
            throw conflict("Alias '" + a.alias() + "' has a row at " + a.effectiveFrom() + " already; rows are append-only.");
        }
        priceBook.reload();
        ObjectNode n = JSON.createObjectNode();
        n.put("alias", a.alias());
        n.put("model", a.model());
        n.put("effective_from", a.effectiveFrom().toString());
        JsonBody.write(ctx, 201, n);
    }

    /** The body as an alias row, checked against {@code now}: a model name, or a prefix followed by one '*'. */
    static AliasRow alias(JsonNode b, Instant now) {
        String alias = JsonBody.requiredText(b, "alias");
        String stem = alias.endsWith("*") ? alias.substring(0, alias.length() - 1) : alias;
        String problem = UsageEventBounds.modelProblem("alias", stem);
        if (problem != null) {
            throw bad(problem + " (a pattern is such a name followed by one '*')", "alias");
        }
        String model = JsonBody.requiredText(b, "model");
        problem = UsageEventBounds.modelProblem("model", model);
        if (problem != null) {
            throw bad(problem, "model");
        }
        return new AliasRow(alias, effectiveFrom(b, now), model);
    }

    /** {@code effective_from}: an instant, not in the past (a row effective in the past would re-price billed calls). */
    private static Instant effectiveFrom(JsonNode b, Instant now) {
        Instant effectiveFrom;
        try {
            effectiveFrom = Instant.parse(JsonBody.requiredText(b, "effective_from"));
        } catch (DateTimeParseException e) {
            throw bad("'effective_from' must be an ISO-8601 instant such as 2026-01-01T00:00:00Z.", "effective_from");
        }
        if (effectiveFrom.isBefore(now.minusSeconds(PAST_TOLERANCE_SECONDS))) {
            throw bad("'effective_from' must not be in the past: prices change from now on, billed calls keep theirs.", "effective_from");
        }
        return effectiveFrom;
    }

    /**
     * The body as a price row, checked against {@code now}; {@code service_tier} defaults to standard,
     * {@code price_divisor} (the prices are per that many tokens, ADR 0087) to 1, at most
     * {@value ModelPrice#MAX_PRICE_DIVISOR}.
     */
    static PriceRow row(JsonNode b, Instant now) {
        String model = JsonBody.requiredText(b, "model");
        Instant effectiveFrom = effectiveFrom(b, now);
        ServiceTier tier = ServiceTier.STANDARD;
        if (b.hasNonNull("service_tier")) {
            tier = ServiceTier.ofDbName(b.get("service_tier").asText()).orElseThrow(() ->
                    bad("'service_tier' must be one of " + String.join(", ", UsageEventBounds.SERVICE_TIERS) + ".", "service_tier"));
        }
        Long input = JsonBody.nonNegative(b, "input_nano_usd_per_token", true);
        Long cached = JsonBody.nonNegative(b, "cached_input_nano_usd_per_token", false);
        Long output = JsonBody.nonNegative(b, "output_nano_usd_per_token", false);
        Long divisor = JsonBody.positiveLong(b, "price_divisor").value();
        if (divisor != null && divisor > ModelPrice.MAX_PRICE_DIVISOR) {
            throw bad("'price_divisor' must be a positive integer of at most " + ModelPrice.MAX_PRICE_DIVISOR
                    + " (the prices are nano-USD per that many tokens).", "price_divisor");
        }
        String version = b.hasNonNull("price_version") ? b.get("price_version").asText()
                : model + "@" + effectiveFrom + (tier == ServiceTier.STANDARD ? "" : ":" + tier.dbName());
        return new PriceRow(model, tier, effectiveFrom, input, cached, output, version, divisor == null ? 1 : divisor.intValue());
    }
}
