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
}
