package dev.tokenmeter.edge;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.tokenmeter.config.EnvReader;
import dev.tokenmeter.config.ServiceLogging;
import dev.tokenmeter.db.Migrations;
import dev.tokenmeter.edge.admin.AdminApi;
import dev.tokenmeter.edge.dashboard.DashboardApi;
import dev.tokenmeter.edge.admin.AdminToken;
import dev.tokenmeter.edge.admin.UserLimitPublisher;
import dev.tokenmeter.edge.alert.UsageAlertPublisher;
import dev.tokenmeter.edge.async.AsyncJobsConfig;
import dev.tokenmeter.edge.async.AsyncMetrics;
import dev.tokenmeter.edge.async.AsyncWorkers;
import dev.tokenmeter.edge.async.JobCallbacks;
import dev.tokenmeter.edge.async.JobRoutes;
import dev.tokenmeter.edge.async.JobStore;
import dev.tokenmeter.edge.auth.ApiKeyAuthenticator;
import dev.tokenmeter.edge.metering.MeteringApi;
import dev.tokenmeter.edge.usage.UsageApi;
import dev.tokenmeter.edge.quota.RedisEndpoint;
import io.lettuce.core.ReadFrom;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import io.lettuce.core.api.StatefulRedisConnection;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import dev.tokenmeter.edge.crypto.PersonalKeyCipher;
import dev.tokenmeter.edge.pricing.PriceBook;
import dev.tokenmeter.edge.responsecache.ResponseCache;
import dev.tokenmeter.edge.proxy.EdgeMetrics;
import dev.tokenmeter.edge.proxy.OpenAiProxyHandler;
import dev.tokenmeter.edge.proxy.batch.BatchStore;
import dev.tokenmeter.edge.proxy.Upstream;
import dev.tokenmeter.edge.account.AccountDirectory;
import dev.tokenmeter.edge.account.PostgresAccountDirectory;
import dev.tokenmeter.edge.call.CallMetrics;
import dev.tokenmeter.edge.call.Metering;
import dev.tokenmeter.edge.call.QuotaEngineGate;
import dev.tokenmeter.edge.call.QuotaGate;
import dev.tokenmeter.edge.quota.JooqUsageBaseline;
import dev.tokenmeter.edge.quota.QuotaConfig;
import dev.tokenmeter.edge.quota.QuotaEngine;
import dev.tokenmeter.edge.quota.QuotaRedis;
import dev.tokenmeter.edge.proxy.UpstreamKeys;
import dev.tokenmeter.edge.publish.EventSink;
import dev.tokenmeter.edge.publish.SpoolingEventSink;
import dev.tokenmeter.edge.tokens.TokenCounter;
import dev.tokenmeter.events.publish.UsageEventPublisher;
import dev.tokenmeter.events.topic.Topics;
import io.javalin.config.RoutesConfig;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.sql.DataSource;
import java.sql.Connection;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The edge service: reads {@link EdgeConfig} from the environment, builds its parts with constructors and
 * builders, starts the HTTP server and adds a shutdown hook.
 *
 * <p>HTTP, public listener: the proxy, the metering API ({@link MeteringApi}), a user's own usage query
 * ({@link UsageApi}). Admin listener: {@code /metrics}, the admin usage query and, when {@code ADMIN_TOKEN} is set,
 * the admin API ({@link AdminApi}). Reads: Postgres tables {@code api_key}, {@code account}, {@code personal_provider_key}, {@code model_price};
 * Redis through the quota engine. Writes: one {@code UsageEvent} per call to topic {@code <prefix>usage-events}
 * (through the {@link EventSink}); in {@code main}, one {@code UsageAlert} per threshold of the monthly credit crossed
 * (50/80/100 %, once per user and month) to {@code <prefix>usage-alerts} (through the {@link UsageAlertPublisher}).
 *
 * <p>Why over 300 lines (issue 15 asks): it is the edge's whole wiring in one place — every part built with its
 * constructor or builder, in start order, and closed in reverse — which a newcomer reads to see what the edge is
 * made of; it holds no call logic.
 */
public final class EdgeApp implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EdgeApp.class);
    /** Connections kept to the upstream at most; a call beyond waits for one (each call holds one while it runs). */
    private static final int UPSTREAM_MAX_CONNECTIONS = 1024;

    private final EdgeServer server;
    private final PriceBook priceBook;
    private final PrometheusMeterRegistry registry;
    private final Upstream upstream;

    private final List<AutoCloseable> closeables;

    /** This edge's async workers, or null when ASYNC_WORKERS is 0. */
    private final AsyncWorkers workers;

    private EdgeApp(EdgeServer server, PriceBook priceBook, PrometheusMeterRegistry registry, Upstream upstream,
                    List<AutoCloseable> closeables, AsyncWorkers workers) {
        this.workers = workers;
        this.server = server;
        this.priceBook = priceBook;
        this.registry = registry;
        this.upstream = upstream;
        this.closeables = closeables;
    }

    /**
     * Builds and starts the edge around the parts that have their own life cycle (the caller closes them after
     * this): the database, the quota engine and the event sink. Tests use this same wiring.
     */
    public static EdgeApp start(EdgeConfig config, DataSource dataSource, QuotaGate quota, EventSink sink,
                                List<Consumer<RoutesConfig>> extraRoutes) {
        return start(config, dataSource, quota, sink, extraRoutes, new PrometheusMeterRegistry(PrometheusConfig.DEFAULT), userId -> { });
    }

    /** As above, with the registry the other parts (e.g. the quota engine) already report to. */
    public static EdgeApp start(EdgeConfig config, DataSource dataSource, QuotaGate quota, EventSink sink,
                                List<Consumer<RoutesConfig>> extraRoutes, PrometheusMeterRegistry registry) {
        return start(config, dataSource, quota, sink, extraRoutes, registry, userId -> { });
    }

    public static EdgeApp start(EdgeConfig config, DataSource dataSource, QuotaGate quota, EventSink sink,
                                List<Consumer<RoutesConfig>> extraRoutes, Consumer<String> accountInvalidation) {
        return start(config, dataSource, quota, sink, extraRoutes, new PrometheusMeterRegistry(PrometheusConfig.DEFAULT),
                accountInvalidation);
    }

    /**
     * @param registry            the registry every part reports to; served at /metrics
     * @param accountInvalidation called by the admin API after a change to a user's account, limits or keys (the
     *                            quota engine's {@code AccountDirectory::invalidate})
     */
    public static EdgeApp start(EdgeConfig config, DataSource dataSource, QuotaGate quota, EventSink sink,
                                List<Consumer<RoutesConfig>> extraRoutes, PrometheusMeterRegistry registry,
                                Consumer<String> accountInvalidation) {
        DSLContext db = DSL.using(dataSource, SQLDialect.POSTGRES);
        PriceBook priceBook = PriceBook.load(db, config.defaultPriceModel(), config.priceRefreshInterval());
        PersonalKeyCipher cipher = config.personalKeyMasterKey().isEmpty() ? null
                : new PersonalKeyCipher(config.personalKeyMasterKeyId(), config.personalKeyMasterKey());
        Upstream upstream = Upstream.create(config.upstreamBaseUrl(), config.upstreamConnectTimeout(),
                config.upstreamRequestTimeout(), UPSTREAM_MAX_CONNECTIONS);
        ApiKeyAuthenticator authenticator = new ApiKeyAuthenticator(db, config.apiKeyCacheTtl());
        List<AutoCloseable> closeables = new ArrayList<>();
        List<Consumer<RoutesConfig>> routes = new ArrayList<>(extraRoutes);
        List<Consumer<RoutesConfig>> adminRoutes = new ArrayList<>();
        // Metering API and usage query: Redis for reservations and idempotency markers.
        RedisClusterCommands<String, String> meteringRedis = meteringRedis(config.redisUri(), closeables);
        UpstreamKeys upstreamKeys = new UpstreamKeys(config.openAiApiKey(), db, cipher);
        // The response cache's own Redis (ADR 0074), when configured; none = every call goes upstream.
        ResponseCache responseCache = null;
        if (config.responseCache().enabled()) {
            responseCache = ResponseCache.connect(config.responseCache().redisUri(), config.responseCache().timeout(),
                    config.responseCache().maxEntryBytes());
            closeables.add(responseCache);
        }
        MeteringApi metering = new MeteringApi(authenticator, priceBook,
                new Metering(quota, sink, CallMetrics.NONE, config.edgeInstance(), Clock.systemUTC()), meteringRedis, config.edgeInstance(),
                Duration.ofHours(1), Clock.systemUTC(), upstreamKeys::hasPersonalKey,
                config.batchMaxEventAge());
        routes.add(metering::routes);
        AdminToken adminToken = config.adminToken().isEmpty() ? null : new AdminToken(config.adminToken());
        if (adminToken != null) {
            Topics topics = Topics.fromEnv(Map.of("TOPIC_PREFIX", config.topicPrefix()));
            UserLimitPublisher userLimits = new UserLimitPublisher(config.kafka(), topics.userLimits());
            closeables.add(userLimits);
            AdminApi admin = new AdminApi(adminToken, db, authenticator, cipher, priceBook, userLimits,
                    accountInvalidation, quota::tenantBudgetChanged, Clock.systemUTC());
            adminRoutes.add(admin::routes);
        }
        UsageApi usage = new UsageApi(authenticator, adminToken, quota, db, Clock.systemUTC());
        routes.add(usage::routes);
        adminRoutes.add(usage::adminRoutes);
        // The dashboard (ADR 0082): the page on both listeners (the public one shows a key holder's own usage), its
        // read-only pipeline and alert routes on the admin listener.
        DashboardApi dashboard = new DashboardApi(adminToken, db, config.kafka(),
                Topics.fromEnv(Map.of("TOPIC_PREFIX", config.topicPrefix())), config.aggregatorApplicationId(), Clock.systemUTC());
        closeables.add(dashboard);
        routes.add(dashboard::routes);
        adminRoutes.add(dashboard::adminRoutes);
        OpenAiProxyHandler proxy = OpenAiProxyHandler.builder()
                .authenticator(authenticator)
                .priceBook(priceBook)
                .tokenCounter(new TokenCounter().warm())
                .quota(quota)
                .keys(upstreamKeys)
                .sink(sink)
                .metrics(new EdgeMetrics(registry, sink))
                .upstream(upstream)
                .maxBodyBytes(config.maxBodyBytes())
                .defaultMaxCompletionTokens(config.defaultMaxCompletionTokens())
                .edgeInstance(config.edgeInstance())
                .drainTimeout(config.upstreamDrainTimeout())
                .maxCallsInFlight(config.maxCallsInFlight())
                .responseCache(responseCache, config.responseCache().defaultTtl())
                .singleFlight(config.responseCache().flightWait(), config.responseCache().flightLease())
                .batches(new BatchStore(db), config.maxBatchFileBytes(), config.maxBatchLines())
                .build();
        // Async jobs (ADR 0083): queued on the quota Redis, run by this edge's workers through the proxy's call path.
        AsyncJobsConfig asyncConfig = config.asyncJobs();
        JobStore jobs = new JobStore(meteringRedis, asyncConfig);
        jobs.ensureGroup();
        JobCallbacks callbacks = asyncConfig.callbacks() ? new JobCallbacks(asyncConfig, Clock.systemUTC()) : null;
        routes.add(new JobRoutes(authenticator, jobs, callbacks)::routes);
        AsyncMetrics asyncMetrics = new AsyncMetrics(registry, jobs, Clock.systemUTC());
        AsyncWorkers workers = null;
        if (asyncConfig.workers() > 0) {
            // XREADGROUP blocks its connection: the workers read on one of their own.
            RedisClusterCommands<String, String> blocking = meteringRedis(config.redisUri(), closeables);
            workers = new AsyncWorkers(jobs, blocking, (job, before, started) -> proxy.runJob(job, before, started, asyncConfig),
                    config.edgeInstance() + "-" + java.util.UUID.randomUUID().toString().substring(0, 8), Clock.systemUTC(),
                    asyncMetrics, callbacks);
        }
        if (!config.batchPollInterval().isZero()) {
            // The Batch API's poller (ADR 0087): a batch nobody reads is billed once it ends, before its reservation lapses.
            java.util.concurrent.ScheduledExecutorService poller = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "batch-poller");
                t.setDaemon(true);
                return t;
            });
            long ms = config.batchPollInterval().toMillis();
            poller.scheduleWithFixedDelay(() -> {
                try {
                    proxy.pollBatches();
                } catch (RuntimeException e) {
                    LOG.warn("batch poller round failed: {}", e.toString());
                }
            }, ms, ms, java.util.concurrent.TimeUnit.MILLISECONDS);
            closeables.add(poller::shutdownNow);
        }
        EdgeServer.Builder server = EdgeServer.builder()
                .host(config.host())
                .port(config.port())
                .maxRequestBytes(config.maxBodyBytes())
                .proxy(proxy)
                .asyncJobs(jobs)
                .prometheus(registry)
                .readinessCheck("quota", quota::isReady)
                .readinessCheck("events", sink::isReady)
                .readinessCheck("postgres", () -> isUsable(dataSource))
                .routes(routes)
                .adminHost(config.adminHost())
                .adminPort(config.adminPort());
        adminRoutes.forEach(server::adminRoutes);
        EdgeServer started = server.build()
                .start();
        if (workers != null) {
            workers.start();
        }
        return new EdgeApp(started, priceBook, registry, upstream, closeables, workers);
    }

    /** Every environment key the edge reads (its own and the quota engine's), with defaults and descriptions. */
    static String help() {
        return EdgeConfig.describe() + EnvReader.describe(QuotaConfig.KEYS) + EnvReader.describe(ServiceLogging.KEYS);
    }

    public static void main(String[] args) {
        if (args.length > 0 && (args[0].equals("--help") || args[0].equals("-h"))) {
            System.out.print(help());
            return;
        }
        EdgeConfig config;
        try {
            ServiceLogging.check(System.getenv());
            config = EdgeConfig.fromEnv();
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        LOG.info("starting edge with {}", config);
        HikariDataSource dataSource = dataSource(config);
        // The deployment's init step migrates (as the schema's owner); the edge's role only checks the version.
        String schemaVersion = Migrations.requireCurrent(dataSource);
        LOG.info("database schema at version {} (this build needs {})", schemaVersion, Migrations.EXPECTED_VERSION);
        Topics topics = Topics.fromEnv(Map.of("TOPIC_PREFIX", config.topicPrefix()));
        EventSink sink = spoolingSink(config, topics);
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        QuotaConfig quotaConfig = QuotaConfig.fromEnv(System.getenv());
        QuotaRedis redis = QuotaRedis.connect(config.redisUri(), quotaConfig.redisTimeout());
        PostgresAccountDirectory accounts = new PostgresAccountDirectory(dataSource, quotaConfig.accountCacheTtl());
        QuotaEngine engine = quotaEngine(quotaConfig, redis, accounts, dataSource, registry);
        UsageAlertPublisher alerts = alertPublisher(config, topics, accounts, registry);
        QuotaGate quota = new QuotaEngineGate(engine, redis.commands(), quotaConfig.failurePolicy(), alerts, Clock.systemUTC());
        EdgeApp app = start(config, dataSource, quota, sink, List.of(), registry, accounts::invalidate);
        // Prometheus in another container reaches this one; the admin listener stays private (ADR 0069).
        HTTPServer metrics = metricsListener(config.metricsPort(), registry);
        LOG.info("edge listening on {} (admin API and /metrics on {}) metrics port {}", app.server().baseUrl(),
                app.server().adminBaseUrl(), metrics == null ? "off" : metrics.getPort());
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            LOG.info("shutting down");
            if (metrics != null) {
                metrics.stop();
            }
            app.close();
            alerts.close();
            sink.close();
            engine.close();
            redis.close();
            dataSource.close();
        }, "edge-shutdown"));
    }

    /** The /metrics-only listener on all interfaces (METRICS_PORT), or null when it is off (-1). */
    private static HTTPServer metricsListener(int port, PrometheusMeterRegistry registry) {
        if (port < 0) {
            return null;
        }
        try {
            return HTTPServer.builder().port(port).registry(registry.getPrometheusRegistry()).buildAndStart();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("METRICS_PORT " + port + ": cannot listen", e);
        }
    }

    /** The metering API's Redis (reservations, idempotency markers): standalone or cluster, as REDIS_URI says (ADR 0080). */
    private static RedisClusterCommands<String, String> meteringRedis(String uri, List<AutoCloseable> closeables) {
        RedisEndpoint endpoint = RedisEndpoint.parse(uri, "REDIS_URI");
        if (endpoint.cluster()) {
            RedisClusterClient client = QuotaRedis.clusterClient(null, endpoint, RedisURI.DEFAULT_TIMEOUT_DURATION);
            StatefulRedisClusterConnection<String, String> connection = client.connect();
            connection.setReadFrom(ReadFrom.UPSTREAM);
            closeables.add(connection);
            closeables.add(client::shutdown);
            return connection.sync();
        }
        RedisClient redisClient = RedisClient.create(endpoint.nodes().get(0));
        StatefulRedisConnection<String, String> redis = redisClient.connect();
        closeables.add(redis);
        closeables.add(redisClient::shutdown);
        return redis.sync();
    }

    /** The Redis quota engine over the account directory and usage baseline in Postgres. */
    public static QuotaEngine quotaEngine(QuotaConfig quotaConfig, QuotaRedis redis, AccountDirectory accounts,
                                          DataSource dataSource, io.micrometer.core.instrument.MeterRegistry registry) {
        return QuotaEngine.builder()
                .redis(redis.commands())
                .accountDirectory(accounts)
                .tenantBudgets(new dev.tokenmeter.edge.quota.PostgresTenantBudgets(dataSource, quotaConfig.accountCacheTtl()))
                .usageBaseline(new JooqUsageBaseline(dataSource))
                .dataSource(dataSource)
                .config(quotaConfig)
                .meterRegistry(registry)
                .build()
                .warmUp();
    }

    /**
     * Publishes the thresholds the quota engine reports as crossed to {@code <prefix>usage-alerts}; pass it to the
     * {@link QuotaEngineGate}. The caller closes it (after the server, so late settles still get theirs out).
     */
    public static UsageAlertPublisher alertPublisher(EdgeConfig config, Topics topics, AccountDirectory accounts,
                                                     io.micrometer.core.instrument.MeterRegistry registry) {
        return new UsageAlertPublisher(config.kafka(), topics.alerts(), accounts, registry);
    }

    /**
     * The production sink: Kafka first, the durable local spool when Kafka is away (docs/adr/0050-edge-spool.md).
     * A short request timeout and max.block.ms let the sink notice an outage within SPOOL_SEND_TIMEOUT instead of
     * the producer's defaults (a minute); the long delivery timeout keeps retrying sends that are already spooled.
     */
    public static SpoolingEventSink spoolingSink(EdgeConfig config, Topics topics) {
        UsageEventPublisher publisher = UsageEventPublisher.builder()
                .connection(config.kafka().clientProperties())
                .topic(topics.usageEvents())
                .clientId("edge-" + config.edgeInstance())
                .deliveryTimeout(java.time.Duration.ofMinutes(2))
                .producerProperty("request.timeout.ms", 10_000)
                .producerProperty("max.block.ms", 1_000)
                .build();
        return SpoolingEventSink.builder()
                .publisher(publisher)
                .spoolDir(config.spoolDir())
                .maxBytes(config.spoolMaxBytes())
                .fsyncInterval(config.spoolFsyncInterval())
                .sendTimeout(config.spoolSendTimeout())
                .build();
    }

    static HikariDataSource dataSource(EdgeConfig config) {
        HikariConfig hikari = new HikariConfig();
        hikari.setJdbcUrl(config.databaseUrl());
        hikari.setUsername(config.databaseUser());
        hikari.setPassword(config.databasePassword());
        hikari.setMaximumPoolSize(config.databasePoolSize());
        hikari.setPoolName("edge");
        return new HikariDataSource(hikari);
    }

    static boolean isUsable(DataSource dataSource) {
        try (Connection c = dataSource.getConnection()) {
            return c.isValid(1);
        } catch (Exception e) {
            return false;
        }
    }

    public EdgeServer server() {
        return server;
    }

    public PriceBook priceBook() {
        return priceBook;
    }

    public PrometheusMeterRegistry registry() {
        return registry;
    }

    /** Stops taking calls (in-flight ones finish), then stops the price refresh and the upstream client. */
    @Override
    public void close() {
        if (workers != null) {
            // Jobs under way finish (their billing and settles with them); the rest stay queued for other edges.
            workers.close();
        }
        server.close();
        for (AutoCloseable c : closeables.reversed()) {
            try {
                c.close();
            } catch (Exception e) {
                LOG.warn("closing {} failed: {}", c, e.toString());
            }
        }
        priceBook.close();
        upstream.close();
        registry.close();
    }
}
