package dev.tokenmeter.local;

import dev.tokenmeter.aggregator.AggregatorConfig;
import dev.tokenmeter.config.ConfigKey;
import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.config.ServiceLogging;
import dev.tokenmeter.edge.EdgeConfig;
import dev.tokenmeter.edge.quota.QuotaConfig;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.notifier.NotifierConfig;
import dev.tokenmeter.sink.BillingSinkConfig;
import dev.tokenmeter.sink.ops.Init;
import dev.tokenmeter.testkit.EngineVersions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

/**
 * docker-compose.yml and the Dockerfile cannot be run here (no Docker engine), so their configuration is checked
 * against the code it configures: every environment key a service gets is one that service documents and reads,
 * every value parses with the service's own config reader, ports and health checks match the configured ports,
 * and every image's entry point names a class that exists.
 */
class DeploymentConfigTest {

    /** What {@code docker compose} would substitute for the variables the file requires from its environment. */
    private static final Map<String, String> COMPOSE_VARIABLES = Map.ofEntries(
            Map.entry("POSTGRES_PASSWORD", "pg-secret"),
            Map.entry("KAFKA_ADMIN_PASSWORD", "kafka-admin-secret"),
            Map.entry("KAFKA_EDGE_PASSWORD", "kafka-edge-secret"),
            Map.entry("KAFKA_AGGREGATOR_PASSWORD", "kafka-aggregator-secret"),
            Map.entry("KAFKA_SINK_PASSWORD", "kafka-sink-secret"),
            Map.entry("OPENAI_API_KEY", "sk-deploy"),
            Map.entry("ADMIN_TOKEN", "admin-token-of-at-least-32-characters"),
            Map.entry("MASTER_KEY", Base64.getEncoder().encodeToString(new byte[32])),
            Map.entry("REDIS_PASSWORD", "0123456789abcdef0123456789abcdef"),
            Map.entry("EDGE_DATABASE_PASSWORD", "edge-db-secret"),
            Map.entry("SINK_DATABASE_PASSWORD", "sink-db-secret"),
            Map.entry("FINANCE_DATABASE_PASSWORD", "finance-db-secret"),
            Map.entry("NOTIFIER_DATABASE_PASSWORD", "notifier-db-secret"),
            Map.entry("KAFKA_NOTIFIER_PASSWORD", "kafka-notifier-secret"),
            Map.entry("NOTIFIER_ADMIN_TOKEN", "notifier-admin-token-0123456789"));
    private static final Pattern VARIABLE = Pattern.compile("\\$\\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?}");

    private static Path root;
    private static Map<String, Map<String, Object>> services;

    @BeforeAll
    @SuppressWarnings("unchecked")
    static void readCompose() throws IOException {
        root = Path.of("").toAbsolutePath();
        while (!Files.exists(root.resolve("docker-compose.yml"))) {
            root = root.getParent();
            assertThat(root).as("a docker-compose.yml above the module").isNotNull();
        }
        Map<String, Object> compose = new Yaml().load(Files.readString(root.resolve("docker-compose.yml")));
        services = (Map<String, Map<String, Object>>) compose.get("services");
    }

    @Test
    void eachServiceGetsOnlyKeysItDocuments() {
        Map<String, Set<String>> documented = Map.of(
                // The edge names topics by TOPIC_PREFIX (its own key) and never creates them: no TOPIC_PARTITIONS.
                "edge-service", keys(List.of(), EdgeConfig.KEYS, QuotaConfig.KEYS, ServiceLogging.KEYS),
                "aggregator-streams", keys(Topics.ENV_KEYS, AggregatorConfig.KEYS, ServiceLogging.KEYS),
                "billing-sink", keys(Topics.ENV_KEYS, BillingSinkConfig.KEYS, ServiceLogging.KEYS),
                "alert-notifier", keys(Topics.ENV_KEYS, NotifierConfig.KEYS, ServiceLogging.KEYS),
                "init", keys(Topics.ENV_KEYS, Init.KEYS, ServiceLogging.KEYS));
        documented.forEach((service, known) -> {
            Set<String> unknown = new TreeSet<>(env(service).keySet());
            unknown.removeAll(known);
            assertThat(unknown).as("keys docker-compose gives %s that it does not read", service).isEmpty();
        });
    }

    @Test
    void eachServiceAcceptsItsConfiguration() {
        assertThatCode(() -> {
            EdgeConfig.fromEnv(env("edge-service"));
            QuotaConfig.fromEnv(env("edge-service"));
            AggregatorConfig.fromEnv(env("aggregator-streams"));
            BillingSinkConfig.fromEnv(env("billing-sink"));
            NotifierConfig.fromEnv(env("alert-notifier"));
            for (String service : List.of("aggregator-streams", "billing-sink", "alert-notifier", "init")) {
                Topics.fromEnv(env(service));
            }
            for (String service : List.of("edge-service", "aggregator-streams", "billing-sink", "alert-notifier", "init")) {
                ServiceLogging.check(env(service));
            }
        }).doesNotThrowAnyException();
        // The one secret that is parsed rather than passed on: the edge decodes it into an AES-256 key.
        assertThat(Base64.getDecoder().decode(env("edge-service").get("PERSONAL_KEY_MASTER_KEY"))).hasSize(32);
        assertThat(EdgeConfig.fromEnv(env("edge-service")).host()).as("the edge listens beyond the container").isEqualTo("0.0.0.0");
    }

    /** Issue 13: each service logs in to Kafka as the principal init creates for it, never as the admin. */
    @Test
    void eachServiceIsItsOwnKafkaPrincipalAsInitCreatesIt() throws IOException {
        Map<String, String> init = env("init");
        KafkaClientSettings admin = KafkaClientSettings.fromEnv(init);
        assertThat(admin.authenticates()).as("init logs in").isTrue();
        Map<String, String> roles = Map.of("edge-service", "EDGE", "aggregator-streams", "AGGREGATOR", "billing-sink", "SINK",
                "alert-notifier", "NOTIFIER");
        Set<String> usernames = new TreeSet<>();
        roles.forEach((service, role) -> {
            KafkaClientSettings kafka = KafkaClientSettings.fromEnv(env(service));
            assertThat(kafka.securityProtocol()).as("%s security protocol", service).startsWith("SASL_");
            assertThat(kafka.username()).as("%s principal", service)
                    .isEqualTo(init.get(role + "_KAFKA_USERNAME")).isNotEqualTo(admin.username());
            assertThat(kafka.password()).as("%s password is the one init sets", service)
                    .isEqualTo(init.get(role + "_KAFKA_PASSWORD")).isNotEqualTo(admin.password());
            usernames.add(kafka.username());
        });
        assertThat(usernames).as("one principal per service").hasSize(4);
        // The ACLs are granted on the names the services use: the aggregator's application id, the sink's group.
        assertThat(env("aggregator-streams").get("APPLICATION_ID")).isEqualTo(init.get("AGGREGATOR_APPLICATION_ID"));
        assertThat(env("billing-sink").get("GROUP_ID")).isEqualTo(init.get("SINK_GROUP_ID"));
        assertThat(env("alert-notifier").get("GROUP_ID")).isEqualTo(init.get("NOTIFIER_GROUP_ID"));
        assertThat(NotifierConfig.fromEnv(env("alert-notifier")).adminHost()).as("the notifier's admin API stays in its container")
                .isEqualTo("127.0.0.1");
        // The broker authenticates and authorizes (its script formats the storage with the admin's credential).
        assertThat(String.valueOf(services.get("kafka").get("entrypoint"))).contains("/opt/tokenmeter/start.sh");
        assertThat(Files.readString(root.resolve("docker/kafka/start.sh"))).contains(
                "sasl.enabled.mechanisms=SCRAM-SHA-512", "StandardAuthorizer", "allow.everyone.if.no.acl.found=false",
                "--add-scram", "super.users=User:admin");
    }

    /**
     * Issue 14, finding 4: batch ingest refuses events older than the edge's BATCH_MAX_EVENT_AGE, which must stay below
     * the aggregator's DEDUP_RETENTION, or a resent batch could be counted twice in the totals. Checked for
     * docker-compose and for the defaults (the local stack sets neither key).
     */
    @Test
    void batchMaxEventAgeIsBelowTheAggregatorsDedupRetention() {
        assertThat(EdgeConfig.fromEnv(env("edge-service")).batchMaxEventAge())
                .isLessThan(AggregatorConfig.fromEnv(env("aggregator-streams")).dedupRetention());
        assertThat(EdgeConfig.defaults().batchMaxEventAge()).isLessThan(AggregatorConfig.fromEnv(Map.of()).dedupRetention());
    }

    @Test
    void publishedPortsAndHealthChecksAreTheConfiguredOnes() {
        EdgeConfig edge = EdgeConfig.fromEnv(env("edge-service"));
        int edgePort = edge.port();
        // Only the public OpenAI-compatible port is published; the admin listener is bound inside (issue 13).
        assertThat(containerPorts("edge-service")).containsExactly(edgePort).doesNotContain(edge.adminPort());
        assertThat(edge.adminPort()).isNotEqualTo(edgePort);
        assertThat(edge.adminHost()).as("the admin listener is not reachable from outside the container").isEqualTo("127.0.0.1");
        assertThat(healthCheck("edge-service")).contains("/dev/tcp/localhost/" + edgePort).contains("/health/ready");
        assertThat(containerPorts("aggregator-streams")).containsExactly(AggregatorConfig.fromEnv(env("aggregator-streams")).metricsPort());
        assertThat(containerPorts("billing-sink")).containsExactly(BillingSinkConfig.fromEnv(env("billing-sink")).metricsPort());
    }

    @Test
    void everyBuildTargetExistsAndItsEntryPointNamesARealClass() throws Exception {
        String dockerfile = Files.readString(root.resolve("Dockerfile"));
        Set<String> stages = Pattern.compile("(?m)^FROM\\s+\\S+\\s+AS\\s+(\\S+)").matcher(dockerfile).results()
                .map(m -> m.group(1)).collect(Collectors.toSet());
        for (Map.Entry<String, Map<String, Object>> s : services.entrySet()) {
            if (s.getValue().get("build") instanceof Map<?, ?> build) {
                assertThat(stages).as("Dockerfile stage of %s", s.getKey()).contains((String) build.get("target"));
            }
        }
        List<String> classes = Pattern.compile("(?m)^ENTRYPOINT .*\"(dev\\.tokenmeter\\.[\\w.]+)\"").matcher(dockerfile).results()
                .map(m -> m.group(1)).toList();
        assertThat(classes).as("entry points that name a main class").isNotEmpty();
        for (String name : classes) {
            assertThat(Class.forName(name).getMethod("main", String[].class)).as(name).isNotNull();
        }
    }

    /** Issue 13: what is deployed is what is tested; fails when docker-compose's engines drift from the testkit's. */
    @Test
    void enginesAreTheImagesTheTestsRun() {
        assertThat(image("kafka")).as("Kafka: the broker the testkit runs from Kafka's jars").isEqualTo(EngineVersions.KAFKA_IMAGE);
        assertThat(image("redis")).startsWith("redis:");
        assertThat(EngineVersions.major(image("redis"))).as("Redis major version of " + image("redis")).isEqualTo(EngineVersions.REDIS_MAJOR);
        assertThat(image("postgres")).startsWith("postgres:");
        assertThat(EngineVersions.major(image("postgres"))).as("Postgres major version of " + image("postgres"))
                .isEqualTo(EngineVersions.POSTGRES_MAJOR);
    }

    /** Issue 13: Redis requires a password (ACL user, default user off) and never evicts a quota key. */
    @Test
    void redisRequiresAPasswordAndNeverEvicts() {
        List<String> command = ((List<?>) services.get("redis").get("command")).stream().map(String::valueOf).map(DeploymentConfigTest::substitute).toList();
        String joined = String.join(" ", command);
        assertThat(joined).as("the default user (no password) is off").contains("--user default off");
        assertThat(joined).as("the one ACL user, with the password from the environment")
                .contains("--user tokenmeter on >" + COMPOSE_VARIABLES.get("REDIS_PASSWORD") + " ");
        assertThat(joined).doesNotContain("nopass");
        assertThat(command).as("a memory limit").contains("--maxmemory");
        assertThat(command.get(command.indexOf("--maxmemory") + 1)).as("maxmemory").isNotIn("0", "0mb", "0gb");
        assertThat(command.get(command.indexOf("--maxmemory-policy") + 1)).as("maxmemory-policy").isEqualTo("noeviction");

        URI redisUri = URI.create(env("edge-service").get("REDIS_URI"));
        assertThat(redisUri.getUserInfo()).as("the edge logs in as the ACL user")
                .isEqualTo("tokenmeter:" + COMPOSE_VARIABLES.get("REDIS_PASSWORD"));
        assertThat(EdgeConfig.fromEnv(env("edge-service")).redisUri()).isEqualTo(redisUri.toString());
        assertThat(healthCheck("redis")).contains("--user tokenmeter");
        assertThat(env("redis")).containsEntry("REDISCLI_AUTH", COMPOSE_VARIABLES.get("REDIS_PASSWORD"));
    }

    /** Issue 19, ADR 0074: the response cache has its own Redis, which evicts under its maxmemory; the quota's never does. */
    @Test
    void theResponseCacheHasItsOwnEvictingRedis() {
        List<String> command = ((List<?>) services.get("redis-cache").get("command")).stream().map(String::valueOf)
                .map(DeploymentConfigTest::substitute).toList();
        assertThat(command.get(command.indexOf("--maxmemory") + 1)).as("maxmemory").isNotIn("0", "0mb", "0gb");
        assertThat(command.get(command.indexOf("--maxmemory-policy") + 1)).as("maxmemory-policy").isEqualTo("allkeys-lru");
        assertThat(String.join(" ", command)).contains("--user default off");
        URI cacheUri = URI.create(env("edge-service").get("RESPONSE_CACHE_REDIS_URI"));
        assertThat(cacheUri.getHost()).as("not the quota's Redis").isEqualTo("redis-cache");
        assertThat(EdgeConfig.fromEnv(env("edge-service")).responseCache().redisUri()).isEqualTo(cacheUri.toString());
        assertThat(image("redis-cache")).isEqualTo(image("redis"));
    }

    /** Issue 13, least privilege: only init logs in as the schema's owner; each service as its own role, made by init. */
    @Test
    void servicesLogInAsTheirOwnRoleNeverAsTheOwner() {
        String owner = env("postgres").get("POSTGRES_USER");
        String ownerPassword = env("postgres").get("POSTGRES_PASSWORD");
        Map<String, String> init = env("init");
        assertThat(init).containsEntry("DATABASE_USER", owner).containsEntry("DATABASE_PASSWORD", ownerPassword);
        Map<String, String> logins = Map.of("edge-service", "EDGE", "billing-sink", "SINK", "alert-notifier", "NOTIFIER");
        logins.forEach((service, prefix) -> {
            Map<String, String> env = env(service);
            assertThat(env.get("DATABASE_USER")).as("%s's database user", service).isNotEqualTo(owner)
                    .isEqualTo(init.get(prefix + "_DATABASE_USER"));
            assertThat(env.get("DATABASE_PASSWORD")).as("%s's database password", service).isNotEqualTo(ownerPassword)
                    .isEqualTo(init.get(prefix + "_DATABASE_PASSWORD"));
        });
        assertThat(init.get("FINANCE_DATABASE_USER")).isNotBlank().isNotEqualTo(owner);
        assertThat(env("aggregator-streams")).doesNotContainKeys("DATABASE_USER", "DATABASE_PASSWORD");
        // Every service password is a distinct secret.
        assertThat(List.of(ownerPassword, init.get("EDGE_DATABASE_PASSWORD"), init.get("SINK_DATABASE_PASSWORD"),
                init.get("FINANCE_DATABASE_PASSWORD"))).doesNotHaveDuplicates();
    }

    private static String image(String service) {
        Object image = services.get(service).get("image");
        assertThat(image).as("image of %s", service).isNotNull();
        return String.valueOf(image);
    }

    /** A service's environment as the container would see it: merged anchors, variables substituted. */
    private static Map<String, String> env(String service) {
        Map<String, Object> definition = services.get(service);
        assertThat(definition).as("service %s in docker-compose.yml", service).isNotNull();
        Map<String, String> env = new LinkedHashMap<>();
        ((Map<?, ?>) definition.get("environment")).forEach((k, v) -> env.put((String) k, substitute(String.valueOf(v))));
        return env;
    }

    private static String substitute(String value) {
        Matcher m = VARIABLE.matcher(value);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String replacement = COMPOSE_VARIABLES.get(m.group(1));
            if (replacement == null && m.group(2) != null && m.group(2).endsWith("-")) {
                replacement = m.group(3); // ${LOG_LEVEL:-INFO}: unset in the deployer's environment, the default
            }
            assertThat(replacement).as("docker-compose.yml uses ${%s}, which this test does not know", m.group(1)).isNotNull();
            m.appendReplacement(out, Matcher.quoteReplacement(replacement));
        }
        return m.appendTail(out).toString();
    }

    private static List<Integer> containerPorts(String service) {
        List<Integer> ports = new ArrayList<>();
        for (Object p : (List<?>) services.get(service).getOrDefault("ports", List.of())) {
            String mapping = String.valueOf(p);
            ports.add(Integer.parseInt(mapping.substring(mapping.lastIndexOf(':') + 1)));
        }
        return ports;
    }

    private static String healthCheck(String service) {
        Map<?, ?> check = (Map<?, ?>) services.get(service).get("healthcheck");
        assertThat(check).as("health check of %s", service).isNotNull();
        return String.valueOf(check.get("test"));
    }

    @SafeVarargs
    private static Set<String> keys(List<String> topicKeys, List<ConfigKey>... lists) {
        Set<String> names = Stream.of(lists).flatMap(List::stream).map(ConfigKey::name).collect(Collectors.toCollection(TreeSet::new));
        names.addAll(topicKeys);
        return names;
    }
}
