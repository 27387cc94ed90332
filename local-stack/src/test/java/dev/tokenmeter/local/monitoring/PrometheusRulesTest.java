package dev.tokenmeter.local.monitoring;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 21: the alert rules pass {@code promtool check rules} and their unit tests ({@code promtool test rules
 * rules-test.yml}: each alert fires on one series and stays quiet on another), and Prometheus's own configuration
 * (scrape jobs, the rules file, Alertmanager) passes {@code promtool check config}. promtool is Debian's
 * {@code prometheus} package, the same version as the prom/prometheus image docker-compose runs.
 */
class PrometheusRulesTest {

    private final Path dir = MonitoringFiles.prometheusDir();
    private final String promtool = MonitoringFiles.tool("promtool", "prometheus").toString();

    @Test
    void rulesPassPromtoolCheck() throws Exception {
        MonitoringFiles.Run run = MonitoringFiles.run(dir, promtool, "check", "rules", "rules.yml");
        assertThat(run.exitCode()).as("promtool check rules rules.yml:\n" + run.output()).isZero();
    }

    @Test
    void rulesPassTheirUnitTests() throws Exception {
        MonitoringFiles.Run run = MonitoringFiles.run(dir, promtool, "test", "rules", "rules-test.yml");
        assertThat(run.exitCode()).as("promtool test rules rules-test.yml:\n" + run.output()).isZero();
        assertThat(run.output()).contains("SUCCESS");
    }

    /** The unit tests would pass vacuously on an empty file: each alert of rules.yml has a firing and a quiet case. */
    @Test
    void everyAlertHasAFiringAndAQuietCase() throws Exception {
        PromRules rules = PromRules.read(dir.resolve("rules.yml"));
        String tests = Files.readString(dir.resolve("rules-test.yml"));
        assertThat(rules.alerts()).as("alerts in rules.yml").isNotEmpty();
        for (PromRules.Rule alert : rules.alerts()) {
            assertThat(PromRules.casesOf(tests, alert.name()))
                    .as("rules-test.yml cases of " + alert.name() + ": one with exp_alerts: [] and one with an alert")
                    .contains(true, false);
        }
    }

    @Test
    void prometheusConfigurationPassesPromtoolCheck() throws Exception {
        MonitoringFiles.Run run = MonitoringFiles.run(dir, promtool, "check", "config", "prometheus.yml");
        assertThat(run.exitCode()).as("promtool check config prometheus.yml:\n" + run.output()).isZero();
    }
}
