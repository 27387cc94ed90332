package dev.tokenmeter.edge.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.admin.ModelPriceStore.PriceRow;
import dev.tokenmeter.edge.pricing.PriceBook;
import io.javalin.http.Context;

import java.time.Clock;
import java.time.Instant;
import java.time.format.DateTimeParseException;

import static dev.tokenmeter.edge.admin.AdminError.bad;
import static dev.tokenmeter.edge.admin.AdminError.conflict;
import static dev.tokenmeter.edge.admin.JsonBody.JSON;

/**
 * {@code POST /admin/model-prices}: append an effective-dated price row (201; 409 when the model has one at that
 * instant or the version exists), then reload this edge's {@link PriceBook}.
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
        n.put("effective_from", p.effectiveFrom().toString());
        n.put("input_nano_usd_per_token", p.inputNanoUsdPerToken());
        JsonBody.putNullable(n, "cached_input_nano_usd_per_token", p.cachedInputNanoUsdPerToken());
        JsonBody.putNullable(n, "output_nano_usd_per_token", p.outputNanoUsdPerToken());
        n.put("price_version", p.priceVersion());
        JsonBody.write(ctx, 201, n);
    }

    /** The body as a price row, checked against {@code now}. */
    static PriceRow row(JsonNode b, Instant now) {
        String model = JsonBody.requiredText(b, "model");
        Instant effectiveFrom;
        try {
            effectiveFrom = Instant.parse(JsonBody.requiredText(b, "effective_from"));
        } catch (DateTimeParseException e) {
            throw bad("'effective_from' must be an ISO-8601 instant such as 2026-01-01T00:00:00Z.", "effective_from");
        }
        // A row effective in the past would re-price calls already billed; prices only change from now on.
        if (effectiveFrom.isBefore(now.minusSeconds(PAST_TOLERANCE_SECONDS))) {
            throw bad("'effective_from' must not be in the past: prices change from now on, billed calls keep theirs.", "effective_from");
        }
        Long input = JsonBody.nonNegative(b, "input_nano_usd_per_token", true);
        Long cached = JsonBody.nonNegative(b, "cached_input_nano_usd_per_token", false);
        Long output = JsonBody.nonNegative(b, "output_nano_usd_per_token", false);
        String version = b.hasNonNull("price_version") ? b.get("price_version").asText() : model + "@" + effectiveFrom;
        return new PriceRow(model, effectiveFrom, input, cached, output, version);
    }
}
