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

import static dev.tokenmeter.db.jooq.Tables.MODEL_PRICE;

/**
 * Effective-dated model prices from {@code model_price}, held in memory and reloaded every refresh interval, so a
 * price added through the admin API is used within one interval without a database read per call. A failed
 * reload keeps the last good prices (and logs); the first load must succeed.
 */
public final class PriceBook implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(PriceBook.class);

    private final DSLContext db;
    private final String defaultPriceModel;
    private final ScheduledExecutorService refresher;
    /** Per model, rows sorted by effectiveFrom descending. Replaced whole on each reload. */
    private volatile Map<String, List<ModelPrice>> prices = Map.of();

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

    /** Reads every price row now. */
    public void reload() {
        Map<String, List<ModelPrice>> byModel = new HashMap<>();
        db.selectFrom(MODEL_PRICE).fetch().forEach(r -> byModel.computeIfAbsent(r.getModel(), m -> new ArrayList<>())
                .add(new ModelPrice(r.getModel(), r.getEffectiveFrom().toInstant(), r.getInputNanoUsdPerToken(),
                        r.getCachedInputNanoUsdPerToken(), r.getOutputNanoUsdPerToken(), r.getPriceVersion())));
        byModel.values().forEach(l -> l.sort(Comparator.comparing(ModelPrice::effectiveFrom).reversed()));
        prices = Map.copyOf(byModel);
    }

    private void reloadQuietly() {
        try {
            reload();
        } catch (RuntimeException e) {
            LOG.warn("price reload failed, keeping the last {} models' prices: {}", prices.size(), e.toString());
        }
    }

    /**
     * The row of {@code model} in force at {@code at}; for a model without one, the default price model's row;
     * empty when neither exists (the caller answers 400, never bills $0).
     */
    public Optional<ModelPrice> priceAt(String model, Instant at) {
        Optional<ModelPrice> own = exactPriceAt(model, at);
        if (own.isPresent() || defaultPriceModel == null) {
            return own;
        }
        return exactPriceAt(defaultPriceModel, at);
    }

    private Optional<ModelPrice> exactPriceAt(String model, Instant at) {
        List<ModelPrice> rows = prices.get(model);
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

    public int modelCount() {
        return prices.size();
    }

    @Override
    public void close() {
        refresher.shutdownNow();
    }
}
