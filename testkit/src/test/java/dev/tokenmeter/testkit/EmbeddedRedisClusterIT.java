package dev.tokenmeter.testkit;

import dev.tokenmeter.testkit.redis.EmbeddedRedisCluster;
import dev.tokenmeter.testkit.redis.EmbeddedRedisEngine;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.cluster.ClusterClientOptions;
import io.lettuce.core.cluster.ClusterTopologyRefreshOptions;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.SlotHash;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.sync.RedisAdvancedClusterCommands;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Issue 18: the testkit's 3 x 1 Redis Cluster, through Lettuce's cluster client, before and after a master dies. */
class EmbeddedRedisClusterIT {

    private static EmbeddedRedisCluster cluster;
    private static RedisClusterClient client;

    @BeforeAll
    static void startCluster() {
        cluster = EmbeddedRedisCluster.launch(3, 1);
        List<RedisURI> seeds = cluster.nodeUris().stream().map(RedisURI::create).toList();
        client = RedisClusterClient.create(seeds);
        // a command sent to the killed master must fail fast (not queue for 60 s) so the retry goes to the new master
        client.setOptions(ClusterClientOptions.builder()
                .timeoutOptions(TimeoutOptions.enabled(Duration.ofSeconds(2)))
                .socketOptions(SocketOptions.builder().connectTimeout(Duration.ofSeconds(1)).build())
                .topologyRefreshOptions(ClusterTopologyRefreshOptions.builder()
                        .enableAllAdaptiveRefreshTriggers()
                        .enablePeriodicRefresh(Duration.ofSeconds(1))
                        .build())
                .build());
    }

    @AfterAll
    static void stopCluster() {
        if (client != null) {
            client.shutdown();
        }
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void keysAcrossSlotsAreReadableAndAMasterKilledIsReplacedByItsReplica() {
        assertThat(cluster.masters()).as("masters").hasSize(3);
        assertThat(cluster.replicas()).as("replicas").hasSize(3);
        assertThat(cluster.uri()).startsWith("redis-cluster://" + cluster.user() + ":").contains(",");

        try (StatefulRedisClusterConnection<String, String> connection = client.connect()) {
            RedisAdvancedClusterCommands<String, String> redis = connection.sync();
            Set<Integer> mastersHit = new HashSet<>();
            for (int user = 0; user < 300; user++) {
                String key = "{u:" + user + "}:credit";
                redis.set(key, Integer.toString(user * 7));
                mastersHit.add(cluster.masterOf(SlotHash.getSlot(key)).port());
            }
            assertThat(mastersHit).as("300 users' keys land on every master").hasSize(3);
            for (int user = 0; user < 300; user++) {
                assertThat(redis.get("{u:" + user + "}:credit")).as("user %d", user).isEqualTo(Integer.toString(user * 7));
            }

            String key = "{u:0}:credit";
            int slot = SlotHash.getSlot(key);
            EmbeddedRedisEngine victim = cluster.masterOf(slot);
            cluster.kill(victim);
            assertThat(victim.isRunning()).isFalse();
            cluster.awaitHealthy();

            EmbeddedRedisEngine promoted = cluster.masterOf(slot);
            assertThat(promoted.port()).as("the slot moved to the dead master's replica").isNotEqualTo(victim.port());
            assertThat(cluster.masters()).as("still three masters").hasSize(3);
            await("a write to the failed-over slot succeeds through the cluster client")
                    .atMost(Duration.ofSeconds(30)).ignoreExceptions()
                    .until(() -> "OK".equals(redis.set(key, "after-failover")));
            assertThat(redis.get(key)).isEqualTo("after-failover");
            // keys written before the kill were replicated (replication is asynchronous, but they were written long before)
            for (int user = 1; user < 300; user++) {
                assertThat(redis.get("{u:" + user + "}:credit")).as("user %d after the failover", user)
                        .isEqualTo(Integer.toString(user * 7));
            }

            cluster.restart(victim);
            cluster.awaitHealthy();
            assertThat(cluster.replicas()).as("the restarted node rejoins as a replica")
                    .extracting(EmbeddedRedisEngine::port).contains(victim.port());
            assertThat(cluster.masterOf(slot).port()).isEqualTo(promoted.port());
        }
    }
}
