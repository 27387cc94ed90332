package dev.tokenmeter.edge.pricing;

import org.jooq.DSLContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import static dev.tokenmeter.db.jooq.Tables.MODEL_ALIAS;
import static dev.tokenmeter.db.jooq.Tables.MODEL_PRICE;

/**
 * Effective-dated model prices per tier from {@code model_price}, and the aliases of {@code model_alias} (ADR 0040,
 * ADR 0068), held in memory and reloaded every refresh interval, so a price or alias added through the admin API is
 * used within one interval without a database read per call. A failed reload keeps the last good card (and logs);
 * the first load must succeed.
 *
 * <p>A name a caller sends is priced by: its own rows, when it has a standard row in force; else the alias that
 * names it ({@link ModelAliases#match}: exact, else the longest prefix pattern), when the alias' model has a standard
 * row in force; else {@code DEFAULT_PRICE_MODEL} when set. The tier's row of that model is the price; a model without
 * a row for the tier has no price in it (the caller decides: refuse up front, or bill standard and flag).
 */
public final class PriceBook implements PriceCard, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(PriceBook.class);

    private record Card(Map<String, List<ModelPrice>> prices, ModelAliases aliases) {
    }

    private final DSLContext db;
    private final String defaultPriceModel;
    private final ScheduledExecutorService refresher;
    /** Per model and tier ({@link #key}), rows sorted by effectiveFrom descending; and the aliases. Replaced whole. */
    private volatile Card card = new Card(Map.of(), ModelAliases.NONE);

    private PriceBook(DSLContext db, String defaultPriceModel, Duration refreshInterval) {
        this.db = db;
        this.defaultPriceModel = defaultPriceModel == null || defaultPriceModel.isBlank() ? null : defaultPriceModel;
        reload();
        this.refresher = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "price-book-refresh");
            t.setDaemon(true);
            return t;
        });
        long ms = Math.max(100, refreshInterval.toMillis());
        refresher.scheduleWithFixedDelay(this::reloadQuietly, ms, ms, TimeUnit.MILLISECONDS);
    }

    /**
     * @param defaultPriceModel price unknown models like this one; null or blank = unknown models have no price
     */
    public static PriceBook load(DSLContext db, String defaultPriceModel, Duration refreshInterval) {
        return new PriceBook(db, defaultPriceModel, refreshInterval);
    }

    /** Reads every price and alias row now. */
    public void reload() {
        Map<String, List<ModelPrice>> byModel = new HashMap<>();
        db.selectFrom(MODEL_PRICE).fetch().forEach(r -> {
            ServiceTier tier = ServiceTier.ofDbName(r.getServiceTier())
                    .orElseThrow(() -> new IllegalStateException("unknown service_tier " + r.getServiceTier()));
            byModel.computeIfAbsent(key(r.getModel(), tier), m -> new ArrayList<>())
                    .add(new ModelPrice(r.getModel(), tier, r.getEffectiveFrom().toInstant(), r.getInputNanoUsdPerToken(),
                            r.getCachedInputNanoUsdPerToken(), r.getOutputNanoUsdPerToken(), r.getPriceVersion(),
                            r.getImageInputNanoUsdPerToken(), r.getPriceDivisor()));
        });
        byModel.values().forEach(l -> l.sort(Comparator.comparing(ModelPrice::effectiveFrom).reversed()));
        List<ModelAliases.Alias> aliases = db.selectFrom(MODEL_ALIAS).fetch(r ->
                new ModelAliases.Alias(r.getAlias(), r.getEffectiveFrom().toInstant(), r.getModel()));
        card = new Card(Map.copyOf(byModel), new ModelAliases(aliases));
    }

    private void reloadQuietly() {
        try {
            reload();
        } catch (RuntimeException e) {
            LOG.warn("price reload failed, keeping the last {} price lists: {}", card.prices().size(), e.toString());
        }
    }

    /** The standard-tier price of {@code model} at {@code at} (see {@link #priceAt(String, ServiceTier, Instant)}). */
    public Optional<ModelPrice> priceAt(String model, Instant at) {
        return priceAt(model, ServiceTier.STANDARD, at);
    }

    /**
     * The row pricing {@code name} in {@code tier} at {@code at} (see the class comment for how a name is resolved);
     * empty when the name resolves to no priced model, or that model has no row for the tier (never a silent $0).
     */
    @Override
    public Optional<ModelPrice> priceAt(String name, ServiceTier tier, Instant at) {
        Card c = card;
        String priced = pricedModel(c, name, at);
        return priced == null ? Optional.empty() : rowAt(c, priced, tier, at);
    }

    @Override
    public String resolvedModel(String name, Instant at) {
        return ownOrAliased(card, name, at);
    }

    /** The model whose rows price {@code name} at {@code at}, or null. */
    private String pricedModel(Card c, String name, Instant at) {
        String model = ownOrAliased(c, name, at);
        if (model != null) {
            return model;
        }
        if (defaultPriceModel != null && rowAt(c, defaultPriceModel, ServiceTier.STANDARD, at).isPresent()) {
            return defaultPriceModel;
        }
        return null;
    }

    /** {@code name} itself when it has a standard row in force, else its alias' model when that has one, else null. */
    private static String ownOrAliased(Card c, String name, Instant at) {
        if (rowAt(c, name, ServiceTier.STANDARD, at).isPresent()) {
            return name;
        }
        Optional<ModelAliases.Alias> alias = c.aliases().match(name, at);
        return alias.isPresent() && rowAt(c, alias.get().model(), ServiceTier.STANDARD, at).isPresent() ? alias.get().model() : null;
    }

    private static Optional<ModelPrice> rowAt(Card c, String model, ServiceTier tier, Instant at) {
        List<ModelPrice> rows = c.prices().get(key(model, tier));
        if (rows == null) {
            return Optional.empty();
        }
        for (ModelPrice p : rows) {
            if (!p.effectiveFrom().isAfter(at)) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    private static String key(String model, ServiceTier tier) {
        // No model name has a space (model alphabet, ADR 0053).
        return tier == ServiceTier.STANDARD ? model : model + " " + tier.dbName();
    }

    /** Models with a standard-tier price list. */
    public int modelCount() {
        return (int) card.prices().values().stream().filter(l -> l.get(0).tier() == ServiceTier.STANDARD).count();
    }

    public int aliasCount() {
        return card.aliases().size();
    }

    @Override
    public void close() {
        refresher.shutdownNow();
    }
}
