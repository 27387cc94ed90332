package dev.tokenmeter.edge;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.edge.alert.UsageAlertPublisher;
import dev.tokenmeter.edge.auth.ApiKeys;
import dev.tokenmeter.edge.account.PostgresAccountDirectory;
import dev.tokenmeter.edge.call.QuotaEngineGate;
import dev.tokenmeter.edge.call.QuotaGate;
import dev.tokenmeter.edge.quota.QuotaConfig;
import dev.tokenmeter.edge.quota.QuotaEngine;
import dev.tokenmeter.edge.quota.QuotaRedis;
import dev.tokenmeter.edge.quota.UsageSnapshot;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.postgresql.ds.PGSimpleDataSource;

import javax.sql.DataSource;
import dev.tokenmeter.edge.publish.SpoolingEventSink;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.publish.UsageEventPublisher;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.support.WorkDirs;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

import static dev.tokenmeter.db.jooq.Tables.ACCOUNT;
import static dev.tokenmeter.db.jooq.Tables.API_KEY;
import static dev.tokenmeter.db.jooq.Tables.PLAN;
import static org.awaitility.Awaitility.await;

/**
 * One edge wired exactly as {@link EdgeApp} wires it, on real engines: the Redis quota engine, a fresh migrated Postgres database, a
 * unique usage-events topic on the real broker (events published through {@link UsageEventPublisher} and read
 * back with a real consumer), and the fake OpenAI upstream.
 */
public final class EdgeTestBed implements AutoCloseable {

    static final String SERVICE_KEY = "sk-service-test-0123456789";

    public record User(String userId, String tenantId, String apiKeyId, String key) {
    }

    public final FakeOpenAi openAi;
    public final HikariDataSource dataSource;
    /** What the edge under test connects with: its own role, tokenmeter_edge. */
    private final HikariDataSource edgeDataSource;
    public final DSLContext db;
    public final String topic;
    public final String topicPrefix;
    /** The unique usage-alerts topic the edge publishes its alerts to. */
    public final String alertsTopic;
    private final UsageAlertPublisher alerts;
    public final SpoolingEventSink sink;
    /** The spool directory this bed made (removed on close); null when the test passed its own SPOOL_DIR. */
    private java.nio.file.Path ownSpoolDir;
    public final QuotaRedis quotaRedis;
    public final QuotaEngine quotaEngine;
    /** The quota engine's real-time view, for assertions. */
    public final QuotaProbe quota;
    public final EdgeApp app;
    public final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private final KafkaConsumer<String, UsageEvent> consumer;
    private final Map<String, List<UsageEvent>> eventsByUser = new HashMap<>();

    public EdgeTestBed(Engines engines, FakeOpenAi openAi, Map<String, String> env) {
        this(engines, openAi, env, false);
    }

    /**
     * @param accountsUnreachable the quota engine reads accounts from a database that does not exist, so every
     *                            decision is QUOTA_UNAVAILABLE (the engine's fail-closed answer)
     */
    public EdgeTestBed(Engines engines, FakeOpenAi openAi, Map<String, String> env, boolean accountsUnreachable) {
        this.openAi = openAi;
        String jdbcUrl = engines.postgres().createMigratedDatabase("edge");
        HikariConfig hikari = new HikariConfig();
        hikari.setJdbcUrl(jdbcUrl);
        hikari.setUsername(engines.postgres().user());
        hikari.setPassword(engines.postgres().password());
        hikari.setMaximumPoolSize(4);
        this.dataSource = new HikariDataSource(hikari);
        this.db = DSL.using(dataSource, SQLDialect.POSTGRES);
        // The edge itself logs in as its own role (V12), as deployed, so a grant it lacks fails here; the test
        // bed's db (seeding, checks) stays the owner.
        DatabaseLogin edgeLogin = engines.postgres().login(ServiceLogins.EDGE);
        HikariConfig edgeHikari = new HikariConfig();
        edgeHikari.setJdbcUrl(jdbcUrl);
        edgeHikari.setUsername(edgeLogin.user());
        edgeHikari.setPassword(edgeLogin.password());
        edgeHikari.setMaximumPoolSize(4);
        this.edgeDataSource = new HikariDataSource(edgeHikari);

        String prefix = env.getOrDefault("TOPIC_PREFIX", Names.unique("edge") + ".");
        Topics topics = Topics.withPrefix(prefix, 1);
        this.topic = topics.usageEvents().name();
        engines.kafka().createTopic(topic, 1);
        this.topicPrefix = prefix;

        Map<String, String> all = new HashMap<>(env);
        all.put("EDGE_PORT", "0");
        all.putIfAbsent("ADMIN_PORT", "0");
        all.put("UPSTREAM_BASE_URL", openAi.baseUrl());
        all.put("OPENAI_API_KEY", SERVICE_KEY);
        all.put("DATABASE_URL", jdbcUrl);
        all.put("DATABASE_USER", edgeLogin.user());
        all.put("DATABASE_PASSWORD", edgeLogin.password());
        engines.kafka().clientEnv().forEach(all::putIfAbsent);
        all.putIfAbsent("TOPIC_PREFIX", prefix);
        all.putIfAbsent("REDIS_URI", engines.redis().uri());
        all.putIfAbsent("SPOOL_SEND_TIMEOUT", "1s");
        if (!all.containsKey("SPOOL_DIR")) {
            ownSpoolDir = WorkDirs.create("edge-spool");
            all.put("SPOOL_DIR", ownSpoolDir.toString());
        }
        all.putIfAbsent("UPSTREAM_REQUEST_TIMEOUT", "10s");
        // The engine's 100 ms production default is too tight for a 2-core box shared by several builds.
        all.putIfAbsent("QUOTA_REDIS_TIMEOUT_MS", "2000");
        EdgeConfig config = EdgeConfig.fromEnv(all);
        QuotaConfig quotaConfig = QuotaConfig.fromEnv(all).withBackgroundOff();
        this.quotaRedis = QuotaRedis.connect(engines.redis().uri(), quotaConfig.redisTimeout());
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        DataSource accounts = edgeDataSource;
        if (accountsUnreachable) {
            PGSimpleDataSource missing = new PGSimpleDataSource();
            missing.setUrl(engines.postgres().jdbcUrl("no_such_database_" + UUID.randomUUID().toString().substring(0, 8)));
            missing.setUser(engines.postgres().user());
            missing.setPassword(engines.postgres().password());
            accounts = missing;
        }
        PostgresAccountDirectory directory = new PostgresAccountDirectory(accounts, quotaConfig.accountCacheTtl());
        this.quotaEngine = EdgeApp.quotaEngine(quotaConfig, quotaRedis, directory, edgeDataSource, registry);
        this.quota = new QuotaProbe(quotaEngine);
        // The production sink, as EdgeApp.main wires it (Kafka first, the spool during an outage).
        this.sink = EdgeApp.spoolingSink(config, topics);
        this.alertsTopic = topics.alerts().name();
        engines.kafka().createTopic(alertsTopic, 1);
        this.alerts = EdgeApp.alertPublisher(config, topics, directory, registry);
        QuotaGate gate = new QuotaEngineGate(quotaEngine, quotaRedis.connection(), quotaConfig.failurePolicy(), alerts,
                java.time.Clock.systemUTC());
        this.app = EdgeApp.start(config, edgeDataSource, gate, sink, List.of(), registry);

        Properties props = new Properties();
        props.putAll(engines.kafka().clientProperties());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        this.consumer = new KafkaConsumer<>(props, new StringDeserializer(), EventSerdes.usageEvent().deserializer());
        TopicPartition tp = new TopicPartition(topic, 0);
        consumer.assign(List.of(tp));
        consumer.seekToBeginning(List.of(tp));
    }

    /** The public listener: proxy, metering API, a user's own usage. */
    public String baseUrl() {
        return app.server().baseUrl();
    }

    /** The admin listener: admin API, admin usage query, /metrics. */
    public String adminUrl() {
        return app.server().adminBaseUrl();
    }

    /** A fresh user on their own plan with {@code creditNanoUsd} of monthly credit, and an issued service key. */
    public User newUser(long creditNanoUsd) {
        return newUser(creditNanoUsd, 10_000);
    }

    public User newUser(long creditNanoUsd, int requestsPerMinute) {
        return newUser(creditNanoUsd, requestsPerMinute, null);
    }

    /** A fresh user of {@code tenantId} (null: a tenant of its own, {@code t-<userId>}). */
    public User newUser(long creditNanoUsd, int requestsPerMinute, String tenantId) {
        String userId = "u-" + UUID.randomUUID().toString().substring(0, 8);
        tenantId = tenantId == null ? "t-" + userId : tenantId;
        String planId = "plan-" + userId;
        db.insertInto(PLAN).set(PLAN.PLAN_ID, planId).set(PLAN.DISPLAY_NAME, planId)
                .set(PLAN.MONTHLY_CREDIT_NANO_USD, creditNanoUsd).set(PLAN.REQUESTS_PER_MINUTE, requestsPerMinute)
                .set(PLAN.TOKENS_PER_MINUTE, 10_000_000L).execute();
        db.insertInto(ACCOUNT).set(ACCOUNT.USER_ID, userId).set(ACCOUNT.TENANT_ID, tenantId).set(ACCOUNT.PLAN_ID, planId).execute();
        return issueKey(userId, tenantId);
    }

    public User issueKey(String userId, String tenantId) {
        ApiKeys.IssuedKey issued = ApiKeys.issue();
        String apiKeyId = "k-" + UUID.randomUUID().toString().substring(0, 8);
        db.insertInto(API_KEY).set(API_KEY.API_KEY_ID, apiKeyId).set(API_KEY.USER_ID, userId)
                .set(API_KEY.KEY_PREFIX, issued.prefix()).set(API_KEY.SALT, issued.salt()).set(API_KEY.KEY_HASH, issued.hash())
                .execute();
        return new User(userId, tenantId, apiKeyId, issued.key());
    }

    /** The quota engine's real-time view of the user this month. */
    public UsageSnapshot usage(String userId) {
        return quotaEngine.usage(userId, quotaEngine.currentMonth());
    }

    public long usedNanoUsd(String userId) {
        return quota.usedNanoUsd(userId);
    }

    public long reservedNanoUsd(String userId) {
        return quota.reservedNanoUsd(userId);
    }

    /** Settled and reserved service-credit spend of a user this month, read from the quota engine in Redis. */
    public static final class QuotaProbe {
        private final QuotaEngine engine;

        QuotaProbe(QuotaEngine engine) {
            this.engine = engine;
        }

        public long usedNanoUsd(String userId) {
            return engine.usage(userId, engine.currentMonth()).settledNanoUsd();
        }

        public long reservedNanoUsd(String userId) {
            return engine.usage(userId, engine.currentMonth()).reservedNanoUsd();
        }
    }

    public void revoke(User user) {
        db.update(API_KEY).set(API_KEY.REVOKED_AT, OffsetDateTime.now()).where(API_KEY.API_KEY_ID.eq(user.apiKeyId())).execute();
    }

    /**
     * POSTs {@code json} with exactly the headers the official OpenAI SDKs send (openai-python 1.x): Bearer key,
     * JSON content type, {@code Accept: application/json} even for streams, user agent and X-Stainless-* headers.
     */
    public HttpRequest.Builder sdkRequest(String path, String key, String json) {
        return HttpRequest.newBuilder(URI.create(baseUrl() + path))
                .timeout(Duration.ofSeconds(30))
                .header("Authorization", "Bearer " + key)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .header("User-Agent", "OpenAI/Python 1.109.1")
                .header("X-Stainless-Lang", "python")
                .header("X-Stainless-Package-Version", "1.109.1")
                .header("X-Stainless-OS", "Linux")
                .header("X-Stainless-Arch", "x64")
                .header("X-Stainless-Runtime", "CPython")
                .header("X-Stainless-Runtime-Version", "3.12.3")
                .header("X-Stainless-Async", "false")
                .header("x-stainless-retry-count", "0")
                .header("x-stainless-read-timeout", "600")
                .POST(HttpRequest.BodyPublishers.ofString(json));
    }

    public HttpResponse<String> post(String path, String key, String json) throws Exception {
        return client.send(sdkRequest(path, key, json).build(), HttpResponse.BodyHandlers.ofString());
    }

    /**
     * Sends a streamed call and reads its answer until {@code deltas} content deltas have arrived, then closes the
     * connection (a caller who leaves mid-stream).
     *
     * @return the content deltas read (fewer only when the stream ended first)
     */
    public int readContentDeltasThenClose(User user, String body, int deltas) throws Exception {
        HttpResponse<java.io.InputStream> response = client.send(sdkRequest("/v1/chat/completions", user.key(), body).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        int contentLines = 0;
        try (java.io.BufferedReader reader = new java.io.BufferedReader(
                new java.io.InputStreamReader(response.body(), java.nio.charset.StandardCharsets.UTF_8))) {
            for (String line = reader.readLine(); line != null && contentLines < deltas; line = reader.readLine()) {
                if (line.contains("\"content\":\"") && !line.contains("\"content\":\"\"")) {
                    contentLines++;
                }
            }
        }
        return contentLines;
    }

    /** Every event of {@code userId} read from the topic so far (polls the broker once). */
    public synchronized List<UsageEvent> events(String userId) {
        for (ConsumerRecord<String, UsageEvent> r : consumer.poll(Duration.ofMillis(200))) {
            eventsByUser.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
        }
        return List.copyOf(eventsByUser.getOrDefault(userId, List.of()));
    }

    /** The user's events, once there are at least {@code atLeast} of them (waiting up to {@code within}). */
    public List<UsageEvent> awaitEvents(String userId, int atLeast, Duration within) {
        await(atLeast + " usage event(s) of " + userId).atMost(within).until(() -> events(userId).size() >= atLeast);
        return events(userId);
    }

    public static String chat(String model, String userText) {
        return "{\"messages\":[{\"role\":\"user\",\"content\":" + quote(userText) + "}],\"model\":\"" + model + "\"}";
    }

    public static String chatStream(String model, String userText) {
        return "{\"messages\":[{\"role\":\"user\",\"content\":" + quote(userText) + "}],\"model\":\"" + model + "\",\"stream\":true}";
    }

    public static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    @Override
    public void close() {
        app.close();
        alerts.close();
        sink.close();
        quotaEngine.close();
        quotaRedis.close();
        consumer.close();
        edgeDataSource.close();
        dataSource.close();
        client.close();
        WorkDirs.deleteQuietly(ownSpoolDir);
    }
}
