package dev.tokenmeter.local;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 18, many instances: {@code ./run-pipeline --cluster} as a user runs it — three Kafka brokers (RF 3, min ISR 2),
 * the edges' quota in a 3 x 1 Redis Cluster, and two edges, two aggregators and two sinks, each from its shipped jar.
 * The demo traffic goes to both edges in turn, the 20 identical calls meet across them in the shared cache (one
 * upstream call), Kafka gives both aggregators and both sinks partitions, and everything reconciles to the
 * nano-dollar with every event id once in the ledger. Several minutes on a 2-core box: in the fault profile
 * ({@code -Pfaults}, which CI runs), not the default suite.
 */
class ClusterDemoFaultsIT {

    @Test
    void twoOfEveryServiceOnAKafkaAndRedisCluster_reconcileExactly(@TempDir Path dir) throws Exception {
        LauncherExitIT.Launcher launcher = LauncherExitIT.Launcher.start(dir, "--cluster", "--duration", "10s", "--rate", "10");
        await("the launcher's --cluster run ends").atMost(Duration.ofMinutes(12)).until(() -> !launcher.process().isAlive());

        String console = launcher.console();
        assertThat(launcher.process().exitValue()).as("exit status; console:%n%s%nlog tail:%n%s", console, launcher.logTail())
                .isZero();
        assertThat(console).contains("cluster     Kafka: 3 brokers + 1 controller", "edge 2      http://127.0.0.1:",
                        "aggregator 2 and sink 2 ready", "RECONCILED: every total matches to the nano-dollar.")
                .containsPattern("(?m)^calls per edge: http://127\\.0\\.0\\.1:\\d+ 50, http://127\\.0\\.0\\.1:\\d+ 50$")
                .contains("20 identical calls at once over 2 edges: {hit=19, miss=1}")
                .containsPattern("(?m)^consumer group \\S*aggregator\\S*: 2 members, partitions per member \\[[1-9]\\d*, [1-9]\\d*\\]$")
                .containsPattern("(?m)^consumer group \\S*sink\\S*: 2 members, partitions per member \\[[1-9]\\d*, [1-9]\\d*\\]$")
                .containsPattern("(?m)^tenant acme this month \\(GET /v1/usage limits\\): used (0\\.\\d{9}) of 1\\.000000000 USD;"
                        + " the ledger's service-credit sum: \\1 USD$")
                .containsPattern("(?m)^calls sent (\\d+), answered with an event id \\1, ledger rows \\1, distinct event ids \\1, dedup guards \\1$");
        LauncherExitIT.assertNothingLeftBehind(launcher);
    }
}
