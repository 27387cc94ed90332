package dev.tokenmeter.sink;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.tokenmeter.config.ServiceLogging;
import dev.tokenmeter.db.Migrations;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.sink.upstream.OrganizationUsageClient;
import dev.tokenmeter.sink.upstream.UpstreamAlertPublisher;
import dev.tokenmeter.sink.upstream.UpstreamReconciler;
import dev.tokenmeter.sink.upstream.UpstreamSettings;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.conf.Settings;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The billing sink: writes the ledger from {@code usage-events} and the totals from
 * {@code usage-totals-hourly}, {@code usage-totals-monthly} and {@code usage-totals-final} to Postgres,
 * exactly once (positions stored with the rows). Migrates the database at start-up, waiting for it
 * rather than crash-looping when it is not there yet.
 */
public final class BillingSinkApp implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(BillingSinkApp.class);

    private final HikariDataSource dataSource;
    private final List<SinkLoop> loops;
    private final List<Thread> threads;
    private final PeriodCloser closer;
    private final Duration closeInterval;
    private final Clock clock;
    private final UpstreamReconciler upstreamReconciler;
    private final OrganizationUsageClient upstreamClient;
    private final UpstreamAlertPublisher upstreamAlerts;
    private final Duration upstreamInterval;
    private final ScheduledExecutorService upstreamThread =
            Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().name("sink-upstream-reconciler").unstarted(r));
    private final ScheduledExecutorService closerThread =
            Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().name("sink-period-closer").unstarted(r));

    /** {@code clock} dates the period closer's runs (a fixed clock in tests that close periods of a past month). */
    public BillingSinkApp(BillingSinkConfig config, Topics topics, SinkMetrics metrics, Clock clock) {
        this.dataSource = dataSource(config);
        // Never migrates (the deployment's init step does, as the schema's owner; the sink's role may not).
        Migrations.awaitCurrent(dataSource, config.retryBackoffMax());
        DSLContext db = DSL.using(dataSource, SQLDialect.POSTGRES, new Settings().withExecuteLogging(false));
        OffsetStore offsets = new OffsetStore(config.groupId());
        SinkLoop ledger = new SinkLoop("ledger", config, List.of(topics.usageEvents().name()),
                new LedgerWriter(db, offsets, metrics), offsets, db, metrics);
        SinkLoop totals = new SinkLoop("totals", config,
                List.of(topics.hourlyTotals().name(), topics.monthlyTotals().name(), topics.finalTotals().name()),
                new TotalsWriter(db, offsets, metrics), offsets, db, metrics);
        // Attribution rollups (issue 17, ADR 0078): their own loop and consumer group, written like the totals.
        SinkLoop rollups = new SinkLoop("rollups", config, List.of(topics.rollups().name()),
                new RollupWriter(db, offsets, metrics), offsets, db, metrics);
        this.loops = List.of(ledger, totals, rollups);
        this.closer = new PeriodCloser(db, config.periodCloseGrace(), metrics.registry);
        this.closeInterval = config.periodCloseInterval();
        this.clock = clock;
        // Reconciliation with OpenAI's bill (issue 16, ADR 0086): on only with an admin key.
        UpstreamSettings upstream = config.upstream();
        this.upstreamInterval = upstream.interval();
        if (upstream.enabled()) {
            this.upstreamClient = new OrganizationUsageClient(upstream.baseUrl(), upstream.adminKey(), Duration.ofSeconds(30));
            this.upstreamAlerts = new UpstreamAlertPublisher(config.kafka(), topics.alerts());
            this.upstreamReconciler = new UpstreamReconciler(db, upstreamClient, upstream.rereadDays(), upstream.tolerance(),
                    upstream.checkOpenDay(), upstreamAlerts, metrics.registry);
        } else {
            this.upstreamClient = null;
            this.upstreamAlerts = null;
            this.upstreamReconciler = null;
        }
        this.threads = loops.stream().map(l -> Thread.ofPlatform().name("sink-" + l.groupSuffix()).unstarted(l)).toList();
    }

    public BillingSinkApp start() {
        threads.forEach(Thread::start);
        closerThread.scheduleWithFixedDelay(this::closePeriods, 0, closeInterval.toMillis(), TimeUnit.MILLISECONDS);
        if (upstreamReconciler != null) {
            upstreamThread.scheduleWithFixedDelay(this::reconcileUpstream, 0, upstreamInterval.toMillis(), TimeUnit.MILLISECONDS);
        }
        return this;
    }

    public static void main(String[] args) throws Exception {
        ServiceLogging.check(System.getenv());
        BillingSinkConfig config = BillingSinkConfig.fromEnv(System.getenv());
        Topics topics = Topics.fromEnv(System.getenv());
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        BillingSinkApp app = new BillingSinkApp(config, topics, new SinkMetrics(registry), Clock.systemUTC()).start();
        HTTPServer metrics = config.metricsPort() >= 0
                ? HTTPServer.builder().port(config.metricsPort()).registry(registry.getPrometheusRegistry()).buildAndStart()
                : null;
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log.info("shutting down");
            app.close();
            if (metrics != null) {
                metrics.stop();
            }
            stopped.countDown();
        }, "sink-shutdown"));
        log.info("READY group={} metrics port {}", config.groupId(), metrics == null ? "off" : metrics.getPort());
        stopped.await();
    }

    private void reconcileUpstream() {
        try {
            var differences = upstreamReconciler.run(clock.instant());
            log.info("upstream reconciliation done: {} day x model differences beyond tolerance", differences.size());
        } catch (RuntimeException e) {
            // Upstream or database unavailable, or an answer refused: the next run reads the same days again.
            log.warn("upstream reconciliation failed ({}: {}); retrying in {}", e.getClass().getSimpleName(),
                    firstLine(e.getMessage()), upstreamInterval);
        }
    }

    private void closePeriods() {
        try {
            closer.run(clock.instant());
        } catch (RuntimeException e) {
            // Database down or busy: the next run catches up; the job is idempotent.
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            log.warn("period closer failed ({}: {}); retrying in {}", e.getClass().getSimpleName(), firstLine(root.getMessage()),
                    closeInterval);
        }
    }

    /** Stops polling, lets the transaction in flight finish, closes the consumers and the pool. */
    @Override
    public void close() {
        closerThread.shutdown();
        upstreamThread.shutdownNow();
        loops.forEach(SinkLoop::close);
        for (Thread t : threads) {
            try {
                t.join(Duration.ofSeconds(30));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try {
            closerThread.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            upstreamThread.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (upstreamClient != null) {
            upstreamClient.close();
            upstreamAlerts.close();
        }
        dataSource.close();
    }

    private static String firstLine(String s) {
        return s == null ? "" : s.lines().findFirst().orElse("");
    }

    /** The production pool (also what the benchmark writes through). */
    static HikariDataSource dataSource(BillingSinkConfig config) {
        HikariConfig hikari = new HikariConfig();
        hikari.setJdbcUrl(config.databaseUrl());
        hikari.setUsername(config.databaseUser());
        hikari.setPassword(config.databasePassword());
        hikari.setMaximumPoolSize(config.databasePoolSize());
        hikari.setPoolName("billing-sink");
        // Start even when Postgres is down; connections are made when it answers.
        hikari.setInitializationFailTimeout(-1);
        hikari.setConnectionTimeout(5_000);
        return new HikariDataSource(hikari);
    }
}
