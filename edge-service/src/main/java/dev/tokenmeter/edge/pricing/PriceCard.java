package dev.tokenmeter.edge.pricing;

import java.time.Instant;
import java.util.Optional;

/**
 * The price of a model name (as a caller sends it: a priced model, or an alias of one) in a tier at an instant:
 * the {@link PriceBook}'s, or a fixed table in a test.
 */
@FunctionalInterface
public interface PriceCard {

    Optional<ModelPrice> priceAt(String model, ServiceTier tier, Instant at);

    /**
     * The priced model {@code name} stands for at {@code at} — itself, or the model its alias names — or null; never
     * the default price model (a model allow-list is not widened by a default price, ADR 0077). This default, for
     * fixed test tables without aliases, is the standard row's model unless that row is another model's.
     */
    default String resolvedModel(String name, Instant at) {
        return priceAt(name, ServiceTier.STANDARD, at).map(ModelPrice::model).filter(name::equals).orElse(null);
    }
}
