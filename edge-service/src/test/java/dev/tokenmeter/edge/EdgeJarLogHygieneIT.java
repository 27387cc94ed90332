package dev.tokenmeter.edge;

import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.events.topic.ServiceAcls;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.support.FreePorts;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.net.URI;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 13: the SHIPPED edge jar ({@code java -jar edge-service-*-all.jar}, configured by environment variables
 * only, its packaged logging configuration) prints no secret and no prompt or completion text, with the packaged
 * level and with LOG_LEVEL forced to DEBUG and to TRACE: no service OpenAI key, user's own OpenAI key, {@code tm_}
 * key (issued or guessed), admin token, database password (given both as DATABASE_PASSWORD and inside
 * DATABASE_URL), Redis password (inside REDIS_URI) or Kafka SASL password (in KAFKA_PASSWORD and the JAAS config the
 * client builds from it) in its output (stdout and stderr) or in any file it writes. Unlike {@link EdgeLogHygieneIT}
 * (the edge's code, the test class path's WARN), this holds the wire loggers of Jetty, Lettuce, Kafka, jOOQ and
 * the rest to the pins of service-config's logback-service.xml. One JVM per level.
 */
@ExtendWith(EnginesExtension.class)
class EdgeJarLogHygieneIT {

    /** FakeOpenAi's reply words: the completion text every answer carries. */
    private static final String COMPLETION_TEXT = "fake reply from the upstream";

    @TempDir
    Path work;

    @ParameterizedTest(name = "LOG_LEVEL={0}")
    @ValueSource(strings = {"", "DEBUG", "TRACE"})
    void noSecretNorPromptNorCompletionInAnythingTheJarPrints(String level, Engines engines) throws Exception {
        String run = UUID.randomUUID().toString().replace("-", "");
        String serviceKey = "sk-svc-" + run;
        String personalKey = "sk-own-" + UUID.randomUUID();
        String adminToken = "adm-" + UUID.randomUUID() + UUID.randomUUID();
        String dbPassword = "pw-" + UUID.randomUUID();
        String kafkaPassword = "kafka-pw-" + UUID.randomUUID();
        String promptMarker = "prompt-marker-" + UUID.randomUUID();
        String dbRole = "edgejar_" + run.substring(0, 12);
        byte[] master = new byte[32];
        new SecureRandom().nextBytes(master);

        // The edge logs in as its own role, so the password it is given is unique to this run; as deployed, a member
        // of tokenmeter_edge with only its grants (ADR 0060), not a superuser.
        String jdbcUrl = engines.postgres().createMigratedDatabase("edgejar");
        sql(engines, "CREATE ROLE " + dbRole + " LOGIN IN ROLE " + ServiceLogins.EDGE + " PASSWORD '" + dbPassword + "'");
        String prefix = Names.unique("edgejar") + ".";
        Topics topics = Topics.withPrefix(prefix, 1);
        for (var topic : topics.all()) {
            engines.kafka().createTopic(topic.name(), 1);
        }
        // As deployed: the edge logs in to Kafka as its own SCRAM principal with only its ACLs, its password unique
        // to this run (the embedded broker authenticates; another Kafka may not).
        Map<String, String> kafkaEnv;
        if (engines.kafka().secured()) {
            String kafkaUser = prefix + "edge";
            engines.kafka().createPrincipal(kafkaUser, kafkaPassword);
            engines.kafka().createAcls(ServiceAcls.edge(kafkaUser, topics, prefix + "tokenmeter-aggregator"));
            kafkaEnv = engines.kafka().clientSettings(kafkaUser, kafkaPassword).env();
        } else {
            kafkaEnv = engines.kafka().clientEnv();
        }
        Path spool = Files.createDirectories(work.resolve("spool"));
        Path log = work.resolve("edge.log");
        int port = FreePorts.pick();
        int adminPort = FreePorts.pick();

        Map<String, String> env = new HashMap<>();
        env.put("EDGE_HOST", "127.0.0.1");
        env.put("EDGE_PORT", Integer.toString(port));
        env.put("DATABASE_URL", jdbcUrl + (jdbcUrl.contains("?") ? "&" : "?") + "password=" + dbPassword);
        env.put("DATABASE_USER", dbRole);
        env.put("DATABASE_PASSWORD", dbPassword);
        env.put("DATABASE_POOL_SIZE", "4");
        env.put("REDIS_URI", engines.redis().uri());
        env.putAll(kafkaEnv);
        env.put("TOPIC_PREFIX", prefix);
        env.put("OPENAI_API_KEY", serviceKey);
        env.put("ADMIN_TOKEN", adminToken);
        // The admin API is served on its own listener, never on the public port.
        env.put("ADMIN_HOST", "127.0.0.1");
        env.put("ADMIN_PORT", Integer.toString(adminPort));
        env.put("PERSONAL_KEY_MASTER_KEY", Base64.getEncoder().encodeToString(master));
        env.put("SPOOL_DIR", spool.toString());
        env.put("EDGE_INSTANCE", "edge-jar-" + run.substring(0, 6));
        // The engine's 100 ms production default is too tight for a 2-core box shared by several builds.
        env.put("QUOTA_REDIS_TIMEOUT_MS", "2000");
        if (!level.isEmpty()) {
            env.put("LOG_LEVEL", level);
        }

        List<String> secrets = new ArrayList<>(List.of(serviceKey, personalKey, adminToken, dbPassword, promptMarker));
        if (engines.kafka().secured()) {
            secrets.add(kafkaPassword);
        }
        // The testkit's Redis wants an ACL user's password, carried in REDIS_URI (redis://user:pw@host:port).
        if (!engines.redis().password().isEmpty()) {
            secrets.add(engines.redis().password());
        }
        try (FakeOpenAi openAi = FakeOpenAi.start()) {
            env.put("UPSTREAM_BASE_URL", openAi.baseUrl());
            ChildJvm edge = ChildJvm.shippedJar("edge-service", env, log, "-Xmx256m");
            try {
                edge.start();
                String base = "http://127.0.0.1:" + port;
                ChildJvm.awaitHttp(URI.create(base + "/health/ready"), s -> s == 200, Duration.ofSeconds(120), edge, List.of());
                ApiCalls admin = new ApiCalls("http://127.0.0.1:" + adminPort);
                EdgeCalls calls = new EdgeCalls(admin, new ApiCalls(base), adminToken);

                String funded = calls.user("5");
                String onOwnKey = calls.user("0");
                String fundedKey = calls.issueKey(funded);
                String ownKeyUsersKey = calls.issueKey(onOwnKey);
                secrets.addAll(List.of(fundedKey, secretPart(fundedKey), ownKeyUsersKey, secretPart(ownKeyUsersKey)));
                assertThat(admin.send("PUT", "/admin/users/" + onOwnKey + "/personal-key", adminToken,
                        "{\"key\":\"" + personalKey + "\"}").statusCode()).isEqualTo(200);

                assertThat(calls.chat(fundedKey, EdgeTestBed.chat("gpt-4o-mini", promptMarker + " plain")).statusCode()).isEqualTo(200);
                assertThat(openAi.requests().getLast().header("authorization")).isEqualTo("Bearer " + serviceKey);
                HttpResponse<String> streamed = calls.chat(fundedKey, EdgeTestBed.chatStream("gpt-4o-mini", promptMarker + " streamed"));
                assertThat(streamed.statusCode()).isEqualTo(200);
                assertThat(streamed.body()).as("the completion text went through the edge").contains("fake").contains("upstream");
                HttpResponse<String> own = calls.chat(ownKeyUsersKey, EdgeTestBed.chat("gpt-4o-mini", promptMarker + " own key"));
                assertThat(own.statusCode()).as(own.body()).isEqualTo(200);
                assertThat(own.body()).contains(COMPLETION_TEXT);
                assertThat(openAi.requests().getLast().header("authorization")).isEqualTo("Bearer " + personalKey);
                // A guessed key and a wrong admin token are refused, and not printed either.
                String guessed = fundedKey.substring(0, fundedKey.length() - 6) + "zzzzzz";
                secrets.add(guessed);
                assertThat(calls.chat(guessed, EdgeTestBed.chat("gpt-4o-mini", promptMarker + " guessed")).statusCode()).isEqualTo(401);
                String wrongToken = "adm-wrong-" + UUID.randomUUID();
                secrets.add(wrongToken);
                assertThat(admin.send("GET", "/admin/users/" + funded, wrongToken, null).statusCode()).isEqualTo(401);
                assertThat(admin.send("GET", "/admin/users/" + funded, adminToken, null).statusCode()).isEqualTo(200);
            } finally {
                ChildJvm.Stopped stopped = edge.terminate(Duration.ofSeconds(60));
                assertThat(stopped.killed()).as("the edge stops on SIGTERM within its grace period").isFalse();
            }
        } finally {
            sql(engines, "DROP ROLE IF EXISTS " + dbRole);
        }

        String printed = Files.readString(log);
        // The capture works: the edge's own INFO lines are there, with the configuration it started with.
        assertThat(printed).contains("starting edge with EdgeConfig[").contains("edge listening on");
        assertThat(printed).as("the database URL is printed with its password hidden").contains("password=***");
        if (!engines.redis().password().isEmpty()) {
            assertThat(printed).as("the Redis URI is printed with its password hidden").contains(":***@");
        }
        Map<Path, String> written = filesUnder(work);
        written.forEach((file, text) -> {
            for (String secret : secrets) {
                assertThat(text).as("%s (LOG_LEVEL=%s) contains a secret or prompt", work.relativize(file), level)
                        .doesNotContain(secret);
            }
            assertThat(text).as("%s (LOG_LEVEL=%s) contains completion text", work.relativize(file), level)
                    .doesNotContain(COMPLETION_TEXT);
        });
    }

    /** The secret of a {@code tm_<12-char prefix>_<secret>} key (the prefix may be printed). */
    private static String secretPart(String key) {
        return key.substring(key.lastIndexOf('_') + 1);
    }

    private static void sql(Engines engines, String statement) throws Exception {
        try (Connection c = DriverManager.getConnection(engines.postgres().jdbcUrl("postgres"), engines.postgres().user(),
                engines.postgres().password());
             Statement s = c.createStatement()) {
            s.execute(statement);
        }
    }

    /** Every regular file under {@code dir} (the edge's output and its spool), as text. */
    private static Map<Path, String> filesUnder(Path dir) throws Exception {
        Map<Path, String> files = new LinkedHashMap<>();
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.filter(Files::isRegularFile).toList()) {
                files.put(p, new String(Files.readAllBytes(p), StandardCharsets.ISO_8859_1));
            }
        }
        assertThat(files).as("the edge's output").isNotEmpty();
        return files;
    }

    /** The admin-API and proxy calls of one run. */
    private record EdgeCalls(ApiCalls api, ApiCalls publicApi, String adminToken) {

        String user(String creditUsd) throws Exception {
            String id = "u-" + UUID.randomUUID().toString().substring(0, 8);
            assertThat(api.send("PUT", "/admin/plans/plan-" + id, adminToken, "{\"monthly_credit_usd\":\"" + creditUsd
                    + "\",\"requests_per_minute\":600,\"tokens_per_minute\":1000000}").statusCode()).isIn(200, 201);
            assertThat(api.send("POST", "/admin/users", adminToken,
                    "{\"user_id\":\"" + id + "\",\"tenant_id\":\"t-" + id + "\",\"plan_id\":\"plan-" + id + "\"}").statusCode())
                    .isEqualTo(201);
            return id;
        }

        String issueKey(String userId) throws Exception {
            HttpResponse<String> issued = api.send("POST", "/admin/users/" + userId + "/keys", adminToken, null);
            assertThat(issued.statusCode()).isEqualTo(201);
            String key = ApiCalls.json(issued).get("key").asText();
            assertThat(key).startsWith("tm_");
            return key;
        }

        HttpResponse<String> chat(String key, String body) throws Exception {
            return publicApi.send("POST", "/v1/chat/completions", key, body);
        }
    }
}
