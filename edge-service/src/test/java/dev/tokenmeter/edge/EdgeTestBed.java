package dev.tokenmeter.edge;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.tokenmeter.edge.auth.ApiKeys;
import dev.tokenmeter.edge.publish.SpoolingEventSink;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.publish.UsageEventPublisher;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
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

/**
 * One edge wired exactly as {@link EdgeApp} wires it, on real engines: a fresh migrated Postgres database, a
 * unique usage-events topic on the real broker (events published through {@link UsageEventPublisher} and read
 * back with a real consumer), and the fake OpenAI upstream.
 */
public final class EdgeTestBed implements AutoCloseable {

    static final String SERVICE_KEY = "sk-service-test-0123456789";

    public record User(String userId, String tenantId, String apiKeyId, String key) {
    }

    public final FakeOpenAi openAi;
    public final HikariDataSource dataSource;
    public final DSLContext db;
    public final String topic;
    public final SpoolingEventSink sink;
    public final String topicPrefix;
    public final TestQuotaGate quota = new TestQuotaGate();
    public final EdgeApp app;
    public final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private final KafkaConsumer<String, UsageEvent> consumer;
    private final Map<String, List<UsageEvent>> eventsByUser = new HashMap<>();

    public EdgeTestBed(Engines engines, FakeOpenAi openAi, Map<String, String> env) {
        this.openAi = openAi;
        String jdbcUrl = engines.postgres().createMigratedDatabase("edge");
        HikariConfig hikari = new HikariConfig();
        hikari.setJdbcUrl(jdbcUrl);
        hikari.setUsername(engines.postgres().user());
        hikari.setPassword(engines.postgres().password());
        hikari.setMaximumPoolSize(4);
        this.dataSource = new HikariDataSource(hikari);
        this.db = DSL.using(dataSource, SQLDialect.POSTGRES);

        String prefix = env.getOrDefault("TOPIC_PREFIX", Names.unique("edge") + ".");
        Topics topics = Topics.withPrefix(prefix, 1);
        this.topic = topics.usageEvents().name();
        engines.kafka().createTopic(topic, 1);
        this.topicPrefix = prefix;

        Map<String, String> all = new HashMap<>(env);
        all.putIfAbsent("KAFKA_BOOTSTRAP_SERVERS", engines.kafka().bootstrapServers());
        all.putIfAbsent("TOPIC_PREFIX", prefix);
        all.putIfAbsent("REDIS_URI", engines.redis().uri());
        all.putIfAbsent("SPOOL_SEND_TIMEOUT", "1s");
        try {
            all.putIfAbsent("SPOOL_DIR", java.nio.file.Files.createTempDirectory("edge-spool").toString());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        all.put("EDGE_PORT", "0");
        all.put("UPSTREAM_BASE_URL", openAi.baseUrl());
        all.put("OPENAI_API_KEY", SERVICE_KEY);
        all.put("DATABASE_URL", jdbcUrl);
        all.putIfAbsent("UPSTREAM_REQUEST_TIMEOUT", "10s");
        EdgeConfig config = EdgeConfig.fromEnv(all);
        // The production sink, as EdgeApp.main wires it (Kafka first, the spool during an outage).
        this.sink = EdgeApp.spoolingSink(config, topics);
        this.app = EdgeApp.start(config, dataSource, quota, sink, List.of());

        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, engines.kafka().bootstrapServers());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        this.consumer = new KafkaConsumer<>(props, new StringDeserializer(), EventSerdes.usageEvent().deserializer());
        TopicPartition tp = new TopicPartition(topic, 0);
        consumer.assign(List.of(tp));
        consumer.seekToBeginning(List.of(tp));
    }

    public String baseUrl() {
        return app.server().baseUrl();
    }

    /** A fresh user on their own plan with {@code creditNanoUsd} of monthly credit, and an issued service key. */
    public User newUser(long creditNanoUsd) {
        String userId = "u-" + UUID.randomUUID().toString().substring(0, 8);
        String tenantId = "t-" + userId;
        String planId = "plan-" + userId;
        db.insertInto(PLAN).set(PLAN.PLAN_ID, planId).set(PLAN.DISPLAY_NAME, planId)
                .set(PLAN.MONTHLY_CREDIT_NANO_USD, creditNanoUsd).set(PLAN.REQUESTS_PER_MINUTE, 10_000)
                .set(PLAN.TOKENS_PER_MINUTE, 10_000_000L).execute();
        db.insertInto(ACCOUNT).set(ACCOUNT.USER_ID, userId).set(ACCOUNT.TENANT_ID, tenantId).set(ACCOUNT.PLAN_ID, planId).execute();
        User user = issueKey(userId, tenantId);
        quota.account(userId, creditNanoUsd);
        return user;
    }

    User issueKey(String userId, String tenantId) {
        ApiKeys.IssuedKey issued = ApiKeys.issue();
        String apiKeyId = "k-" + UUID.randomUUID().toString().substring(0, 8);
        db.insertInto(API_KEY).set(API_KEY.API_KEY_ID, apiKeyId).set(API_KEY.USER_ID, userId)
                .set(API_KEY.KEY_PREFIX, issued.prefix()).set(API_KEY.SALT, issued.salt()).set(API_KEY.KEY_HASH, issued.hash())
                .execute();
        return new User(userId, tenantId, apiKeyId, issued.key());
    }

    public void revoke(User user) {
        db.update(API_KEY).set(API_KEY.REVOKED_AT, OffsetDateTime.now()).where(API_KEY.API_KEY_ID.eq(user.apiKeyId())).execute();
    }

    /**
     * POSTs {@code json} with exactly the headers the official OpenAI SDKs send (openai-python 1.x): Bearer key,
     * JSON content type, {@code Accept: application/json} even for streams, user agent and X-Stainless-* headers.
     */
    HttpRequest.Builder sdkRequest(String path, String key, String json) {
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

    /** Every event of {@code userId} read from the topic so far (polls the broker once). */
    public synchronized List<UsageEvent> events(String userId) {
        for (ConsumerRecord<String, UsageEvent> r : consumer.poll(Duration.ofMillis(200))) {
            eventsByUser.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
        }
        return List.copyOf(eventsByUser.getOrDefault(userId, List.of()));
    }

    public static String chat(String model, String userText) {
        return "{\"messages\":[{\"role\":\"user\",\"content\":" + quote(userText) + "}],\"model\":\"" + model + "\"}";
    }

    static String chatStream(String model, String userText) {
        return "{\"messages\":[{\"role\":\"user\",\"content\":" + quote(userText) + "}],\"model\":\"" + model + "\",\"stream\":true}";
    }

    static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    @Override
    public void close() {
        app.close();
        sink.close();
        consumer.close();
        dataSource.close();
        client.close();
    }
}
