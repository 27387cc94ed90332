package dev.tokenmeter.local.monitoring;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 21: docker-compose's monitoring (no Docker engine here, and this client has no {@code compose}: the file is
 * read, not run). Prometheus gets its configuration and the rules where prometheus.yml names them, scrapes every
 * service on the port that service is configured to serve /metrics on (15 s, the edge 5 s), and reaches
 * Alertmanager; the Redis exporter logs in to the compose Redis; Grafana gets the Prometheus data source and the
 * pipeline's dashboard; Alertmanager routes only to receivers it defines.
 */
class MonitoringDeploymentTest {

    private static Path root;
    private static Map<String, Map<String, Object>> services;
    private static Map<String, Object> prometheus;

    @BeforeAll
    @SuppressWarnings("unchecked")
    static void read() throws IOException {
        root = MonitoringFiles.root();
        services = (Map<String, Map<String, Object>>) new Yaml().<Map<String, Object>>load(
                Files.readString(root.resolve("docker-compose.yml"))).get("services");
        prometheus = new Yaml().load(Files.readString(root.resolve("docker/prometheus/prometheus.yml")));
    }

    @Test
    void composeRunsPrometheusAlertmanagerTheRedisExporterAndGrafana() {
        assertThat(services).containsKeys("prometheus", "alertmanager", "redis-exporter", "grafana");
    }

    @Test
    void everyMountedFileOfTheMonitoringServicesIsInTheRepository() {
        for (String service : List.of("prometheus", "alertmanager", "grafana")) {
            for (String mount : mounts(service).keySet()) {
                if (mount.startsWith("./")) {
                    assertThat(root.resolve(mount.substring(2))).as(service + " mounts " + mount).exists();
                }
            }
        }
    }

    @Test
    void prometheusFindsItsConfigurationAndTheRulesWhereItLooks() {
        Map<String, String> mounts = mounts("prometheus");
        assertThat(mounts).containsEntry("./docker/prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml");
        assertThat(String.valueOf(services.get("prometheus").get("command"))).contains("--config.file=/etc/prometheus/prometheus.yml");
        for (Object ruleFile : (List<?>) prometheus.get("rule_files")) {
            // relative to the configuration file's directory, as Prometheus resolves it
            assertThat(mounts).as("rules file " + ruleFile).containsEntry("./docker/prometheus/" + ruleFile, "/etc/prometheus/" + ruleFile);
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void scrapeIntervalsAre15sAndTheEdges5s() {
        assertThat(((Map<String, Object>) prometheus.get("global")).get("scrape_interval")).isEqualTo("15s");
        for (Map<String, Object> job : jobs()) {
            assertThat(job.get("scrape_interval")).as("scrape_interval of job " + job.get("job_name"))
                    .isEqualTo(job.get("job_name").equals("edge") ? "5s" : null);
        }
    }

    /** Each job scrapes the compose service and port that serve /metrics, as that service is configured. */
    @Test
    void everyScrapeTargetIsTheServicesMetricsPort() {
        Map<String, String> expected = new HashMap<>();
        Map<String, String> edge = environment("edge-service");
        assertThat(edge.get("ADMIN_HOST")).as("the edge's admin listener stays inside its container").isEqualTo("127.0.0.1");
        assertThat(String.valueOf(services.get("edge-service").get("ports"))).as("the metrics listener is not published")
                .doesNotContain(edge.get("METRICS_PORT"));
        expected.put("edge", "edge-service:" + edge.get("METRICS_PORT"));
        expected.put("aggregator", "aggregator-streams:" + environment("aggregator-streams").get("METRICS_PORT"));
        expected.put("sink", "billing-sink:" + environment("billing-sink").get("METRICS_PORT"));
        expected.put("redis", "redis-exporter:9121"); // the exporter's default listen address
        Map<String, String> actual = new HashMap<>();
        for (Map<String, Object> job : jobs()) {
            actual.put(String.valueOf(job.get("job_name")), String.join(",", targets(job)));
        }
        assertThat(actual).isEqualTo(expected);
    }

    @Test
    @SuppressWarnings("unchecked")
    void alertsGoToTheComposeAlertmanager() {
        Map<String, Object> alerting = (Map<String, Object>) prometheus.get("alerting");
        List<Map<String, Object>> managers = (List<Map<String, Object>>) alerting.get("alertmanagers");
        assertThat(targets(managers.get(0))).containsExactly("alertmanager:9093");
        assertThat(String.valueOf(services.get("alertmanager").get("command"))).contains("--config.file=/etc/alertmanager/alertmanager.yml");
        assertThat(mounts("alertmanager")).containsEntry("./docker/alertmanager/alertmanager.yml", "/etc/alertmanager/alertmanager.yml");
    }

    @Test
    @SuppressWarnings("unchecked")
    void alertmanagerRoutesOnlyToReceiversItDefines() throws IOException {
        Map<String, Object> am = new Yaml().load(Files.readString(root.resolve("docker/alertmanager/alertmanager.yml")));
        List<String> receivers = ((List<Map<String, Object>>) am.get("receivers")).stream().map(r -> String.valueOf(r.get("name"))).toList();
        Map<String, Object> route = (Map<String, Object>) am.get("route");
        List<Object> used = new ArrayList<>(List.of(route.get("receiver")));
        for (Map<String, Object> r : (List<Map<String, Object>>) route.getOrDefault("routes", List.of())) {
            used.add(r.get("receiver"));
        }
        assertThat(receivers).containsAll(used.stream().map(String::valueOf).toList());
    }

    @Test
    void theRedisExporterLogsInToTheComposeRedisAsItsAclUser() {
        Map<String, String> env = environment("redis-exporter");
        assertThat(env.get("REDIS_ADDR")).isEqualTo("redis://redis:6379");
        assertThat(String.valueOf(services.get("redis").get("command"))).contains("--user, " + env.get("REDIS_USER") + ", on");
        assertThat(env.get("REDIS_PASSWORD")).isEqualTo(environment("redis").get("REDISCLI_AUTH"));
    }

    @Test
    @SuppressWarnings("unchecked")
    void grafanaHasThePrometheusDataSourceAndThePipelineDashboard() throws IOException {
        Map<String, String> mounts = mounts("grafana");
        assertThat(mounts).containsEntry("./docker/grafana/provisioning", "/etc/grafana/provisioning");
        Map<String, Object> sources = new Yaml().load(Files.readString(root.resolve("docker/grafana/provisioning/datasources/prometheus.yml")));
        Map<String, Object> source = ((List<Map<String, Object>>) sources.get("datasources")).get(0);
        assertThat(source.get("url")).isEqualTo("http://prometheus:9090");
        Map<String, Object> providers = new Yaml().load(Files.readString(root.resolve("docker/grafana/provisioning/dashboards/tokenmeter.yml")));
        Map<String, Object> options = (Map<String, Object>) ((List<Map<String, Object>>) providers.get("providers")).get(0).get("options");
        assertThat(mounts).containsEntry("./docker/grafana/dashboards", String.valueOf(options.get("path")));

        JsonNode dashboard = new ObjectMapper().readTree(root.resolve("docker/grafana/dashboards/pipeline.json").toFile());
        List<String> exprs = Dashboards.expressions(dashboard);
        assertThat(exprs).as("queries of the pipeline dashboard").hasSizeGreaterThan(10);
        for (JsonNode panel : dashboard.get("panels")) {
            for (JsonNode target : panel.path("targets")) {
                assertThat(target.path("datasource").path("uid").asText()).as("data source of " + panel.get("title"))
                        .isEqualTo(source.get("uid"));
            }
        }
    }

    // ------------------------------------------------------------------ reading compose

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> jobs() {
        return (List<Map<String, Object>>) prometheus.get("scrape_configs");
    }

    @SuppressWarnings("unchecked")
    private static List<String> targets(Map<String, Object> config) {
        List<String> out = new ArrayList<>();
        for (Map<String, Object> sc : (List<Map<String, Object>>) config.get("static_configs")) {
            ((List<Object>) sc.get("targets")).forEach(t -> out.add(String.valueOf(t)));
        }
        return out;
    }

    /** Host path to container path of a service's bind mounts and volumes (":ro" dropped). */
    private static Map<String, String> mounts(String service) {
        Map<String, String> out = new HashMap<>();
        for (Object v : (List<?>) services.get(service).getOrDefault("volumes", List.of())) {
            String[] parts = String.valueOf(v).split(":");
            out.put(parts[0], parts[1]);
        }
        return out;
    }

    /** A service's own environment entries as written (anchors merged, variables not substituted). */
    @SuppressWarnings("unchecked")
    private static Map<String, String> environment(String service) {
        Map<String, String> env = new HashMap<>();
        ((Map<Object, Object>) services.get(service).getOrDefault("environment", Map.of()))
                .forEach((k, v) -> env.put(String.valueOf(k), String.valueOf(v)));
        return env;
    }
}
