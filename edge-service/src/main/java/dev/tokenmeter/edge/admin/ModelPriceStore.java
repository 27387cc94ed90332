package dev.tokenmeter.edge.admin;

import dev.tokenmeter.edge.pricing.ServiceTier;
import org.jooq.DSLContext;

import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;

import static dev.tokenmeter.db.jooq.Tables.MODEL_ALIAS;
import static dev.tokenmeter.db.jooq.Tables.MODEL_PRICE;

/**
 * Writes of tables {@code model_price} and {@code model_alias}: append-only, effective-dated rows (a billed call keeps
 * its price).
 */
final class ModelPriceStore {

    /**
     * One price row; the prices are integer nano-USD per {@code priceDivisor} tokens (1 = per token; V35, ADR 0087),
     * cached input and output may be null.
     */
    record PriceRow(String model, ServiceTier tier, Instant effectiveFrom, long inputNanoUsdPerToken,
                    Long cachedInputNanoUsdPerToken, Long outputNanoUsdPerToken, String priceVersion, int priceDivisor) {

        /** A row priced per token. */
        PriceRow(String model, ServiceTier tier, Instant effectiveFrom, long inputNanoUsdPerToken,
                 Long cachedInputNanoUsdPerToken, Long outputNanoUsdPerToken, String priceVersion) {
            this(model, tier, effectiveFrom, inputNanoUsdPerToken, cachedInputNanoUsdPerToken, outputNanoUsdPerToken,
                    priceVersion, 1);
        }
    }

    /** One alias row: a name or {@code prefix*} → the priced model, from {@code effectiveFrom} (ADR 0068). */
    record AliasRow(String alias, Instant effectiveFrom, String model) {
    }

    private final DSLContext db;

    ModelPriceStore(DSLContext db) {
        this.db = db;
    }

    /** False when a row for the model and tier at that instant (or with that price version) exists already. */
    boolean append(PriceRow p) {
        return db.insertInto(MODEL_PRICE).set(MODEL_PRICE.MODEL, p.model())
                .set(MODEL_PRICE.SERVICE_TIER, p.tier().dbName())
                .set(MODEL_PRICE.EFFECTIVE_FROM, OffsetDateTime.ofInstant(p.effectiveFrom(), ZoneOffset.UTC))
                .set(MODEL_PRICE.INPUT_NANO_USD_PER_TOKEN, p.inputNanoUsdPerToken())
                .set(MODEL_PRICE.CACHED_INPUT_NANO_USD_PER_TOKEN, p.cachedInputNanoUsdPerToken())
                .set(MODEL_PRICE.OUTPUT_NANO_USD_PER_TOKEN, p.outputNanoUsdPerToken())
                .set(MODEL_PRICE.PRICE_VERSION, p.priceVersion())
                .set(MODEL_PRICE.PRICE_DIVISOR, (short) p.priceDivisor())
                .onConflictDoNothing().execute() > 0;
    }

    /** Whether {@code model} has a price row of its own (any time, any tier): an alias must point at one. */
    boolean hasPrices(String model) {
        return db.fetchExists(MODEL_PRICE, MODEL_PRICE.MODEL.eq(model));
    }

    /** False when the alias has a row at that instant already. */
    boolean appendAlias(AliasRow a) {
        return db.insertInto(MODEL_ALIAS).set(MODEL_ALIAS.ALIAS, a.alias())
                .set(MODEL_ALIAS.EFFECTIVE_FROM, OffsetDateTime.ofInstant(a.effectiveFrom(), ZoneOffset.UTC))
                .set(MODEL_ALIAS.MODEL, a.model())
                .onConflictDoNothing().execute() > 0;
    }
}
