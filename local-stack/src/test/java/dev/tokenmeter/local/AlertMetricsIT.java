package dev.tokenmeter.local;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.local.monitoring.Dashboards;
import dev.tokenmeter.local.monitoring.MetricsText;
import dev.tokenmeter.local.monitoring.MonitoringFiles;
import dev.tokenmeter.local.monitoring.PromRules;
import dev.tokenmeter.local.monitoring.RuleMetricsCheck;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.support.FreePorts;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.Yaml;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 21, "every metric a rule uses exists": the stack runs from the shipped jars (as every end-to-end test), plus
 * Debian's Redis exporter against the testkit's Redis (the exporter docker-compose runs); after one call through the
 * edge, every service's {@code /metrics} is scraped under the job name prometheus.yml gives it, and every series
 * selector of rules.yml must find its metric in each job it selects, with every label the rule matches or groups by
 * (job and instance are Prometheus's own, added at scrape time); so must every query of the Grafana dashboard. The
 * metric's absence would leave its alert silent forever: an alert on a name nobody exports never fires.
 */
@ExtendWith(EnginesExtension.class)
class AlertMetricsIT {

    /** The edge's "edge listening on ...", the aggregator's and the sink's READY line. */
    private static final Pattern METRICS_PORT = Pattern.compile(" metrics port (\\d+)");
    private final HttpClient http = HttpClient.newHttpClient();

    @Test
    void everyMetricTheAlertRulesUseIsExportedWithTheLabelsTheyMatch(Engines engines, @TempDir Path workDir) throws Exception {
        Path rulesDir = MonitoringFiles.prometheusDir();
        PromRules rules = PromRules.read(rulesDir.resolve("rules.yml"));
        List<String> jobs = jobNames(rulesDir.resolve("prometheus.yml"));
        assertThat(jobs).containsExactlyInAnyOrder("edge", "aggregator", "sink", "redis");
        // The rules, and the queries of the pipeline's Grafana dashboard: a panel on a name nobody exports stays empty.
        List<PromRules.Rule> queries = new ArrayList<>(rules.all());
        for (String expr : Dashboards.expressions(new ObjectMapper().readTree(
                MonitoringFiles.root().resolve("docker/grafana/dashboards/pipeline.json").toFile()))) {
            queries.add(new PromRules.Rule("dashboard query " + expr, false, expr));
        }
        Path exporter = MonitoringFiles.tool("prometheus-redis-exporter", "prometheus-redis-exporter");

        String prefix = Names.unique("alerts") + ".";
        int exporterPort = FreePorts.pick();
        try (FakeOpenAi upstream = FakeOpenAi.start();
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix);
             Exporter redisExporter = Exporter.start(exporter, engines, exporterPort, workDir.resolve("redis-exporter.log"))) {

            // One call: the edge's per-outcome counters and the consumers' per-partition lag exist once traffic flowed.
            DemoTraffic.Caller caller = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(),
                    stack.kafka(), stack.topics(), prefix).callers().get(0);
            HttpResponse<String> answer = http.send(HttpRequest.newBuilder(stack.edgeUrl().resolve("/v1/chat/completions"))
                    .header("Authorization", "Bearer " + caller.apiKey()).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(
                            "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}"))
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertThat(answer.statusCode()).as("the call through the edge: " + answer.body()).isEqualTo(200);

            Map<String, URI> targets = Map.of(
                    "edge", URI.create("http://127.0.0.1:" + metricsPort(stack.edge.log()) + "/metrics"),
                    "aggregator", URI.create("http://127.0.0.1:" + metricsPort(stack.aggregator.log()) + "/metrics"),
                    "sink", URI.create("http://127.0.0.1:" + metricsPort(stack.sink.log()) + "/metrics"),
                    "redis", URI.create("http://127.0.0.1:" + exporterPort + "/metrics"));

            List<String> missing = new ArrayList<>();
            await("every metric of rules.yml in the scrapes of the jobs it selects").atMost(Duration.ofSeconds(120))
                    .pollInterval(Duration.ofSeconds(2))
                    .untilAsserted(() -> {
                        missing.clear();
                        missing.addAll(RuleMetricsCheck.missing(queries, rules.recordedNames(), scrape(targets)));
                        assertThat(missing).as("metrics or labels the rules expect and no service exports").isEmpty();
                    });
        }
    }

    private Map<String, Map<String, List<Map<String, String>>>> scrape(Map<String, URI> targets) throws Exception {
        Map<String, Map<String, List<Map<String, String>>>> out = new TreeMap<>();
        for (Map.Entry<String, URI> t : targets.entrySet()) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(t.getValue()).timeout(Duration.ofSeconds(10)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).as("GET " + t.getValue() + " (job " + t.getKey() + ")").isEqualTo(200);
            out.put(t.getKey(), MetricsText.parse(r.body()));
        }
        return out;
    }

    /** The port of the /metrics listener a service printed (the stack starts each with METRICS_PORT=0). */
    private static int metricsPort(Path log) throws IOException {
        Matcher m = METRICS_PORT.matcher(Files.readString(log));
        int port = -1;
        while (m.find()) {
            port = Integer.parseInt(m.group(1)); // the last READY line: this run's
        }
        assertThat(port).as("metrics port in " + log).isPositive();
        return port;
    }

    @SuppressWarnings("unchecked")
    private static List<String> jobNames(Path prometheusYml) throws IOException {
        Map<String, Object> yaml = new Yaml().load(Files.readString(prometheusYml));
        List<String> jobs = new ArrayList<>();
        for (Map<String, Object> c : (List<Map<String, Object>>) yaml.get("scrape_configs")) {
            jobs.add(String.valueOf(c.get("job_name")));
        }
        return jobs;
    }

    /** Debian's prometheus-redis-exporter against the testkit's Redis; the password goes by environment, not argv. */
    private record Exporter(Process process) implements AutoCloseable {

        static Exporter start(Path binary, Engines engines, int port, Path log) throws IOException {
            ProcessBuilder pb = new ProcessBuilder(binary.toString(), "-web.listen-address", "127.0.0.1:" + port)
                    .redirectErrorStream(true).redirectOutput(log.toFile());
            Map<String, String> env = pb.environment();
            env.put("REDIS_ADDR", "redis://" + engines.redis().host() + ":" + engines.redis().port());
            if (engines.redis().user() != null) env.put("REDIS_USER", engines.redis().user());
            if (engines.redis().password() != null) env.put("REDIS_PASSWORD", engines.redis().password());
            Exporter exporter = new Exporter(pb.start());
            await("the Redis exporter listens on " + port).atMost(Duration.ofSeconds(30))
                    .until(() -> FreePorts.accepts("127.0.0.1", port, 200) || !exporter.process.isAlive());
            assertThat(exporter.process.isAlive()).as("the Redis exporter runs: " + Files.readString(log)).isTrue();
            return exporter;
        }

        @Override
        public void close() throws InterruptedException {
            process.destroy();
            if (!process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) process.destroyForcibly().waitFor();
        }
    }
}
