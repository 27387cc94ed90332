package dev.tokenmeter.edge.admin;

import org.jooq.DSLContext;

import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;

import static dev.tokenmeter.db.jooq.Tables.MODEL_PRICE;

/** Writes of table {@code model_price}: append-only, effective-dated rows (a billed call keeps its price). */
final class ModelPriceStore {

    /** One price row; the per-token prices are integer nano-USD, cached input and output may be null. */
    record PriceRow(String model, Instant effectiveFrom, long inputNanoUsdPerToken, Long cachedInputNanoUsdPerToken,
                    Long outputNanoUsdPerToken, String priceVersion) {
    }

    private final DSLContext db;

    ModelPriceStore(DSLContext db) {
        this.db = db;
    }

    /** False when a row for the model at that instant (or with that price version) exists already. */
    boolean append(PriceRow p) {
        return db.insertInto(MODEL_PRICE).set(MODEL_PRICE.MODEL, p.model())
                .set(MODEL_PRICE.EFFECTIVE_FROM, OffsetDateTime.ofInstant(p.effectiveFrom(), ZoneOffset.UTC))
                .set(MODEL_PRICE.INPUT_NANO_USD_PER_TOKEN, p.inputNanoUsdPerToken())
                .set(MODEL_PRICE.CACHED_INPUT_NANO_USD_PER_TOKEN, p.cachedInputNanoUsdPerToken())
                .set(MODEL_PRICE.OUTPUT_NANO_USD_PER_TOKEN, p.outputNanoUsdPerToken())
                .set(MODEL_PRICE.PRICE_VERSION, p.priceVersion())
                .onConflictDoNothing().execute() > 0;
    }
}
