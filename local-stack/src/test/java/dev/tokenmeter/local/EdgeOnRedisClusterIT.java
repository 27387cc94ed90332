package dev.tokenmeter.local;

import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.Names;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.redis.EmbeddedRedisCluster;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 18 / ADR 0080: the edge from its shipped jar, REDIS_URI in the cluster form
 * ({@code redis-cluster://user:password@h:p1,h:p2,...}) naming the testkit's 3 x 1 Redis Cluster, serves calls;
 * the quota state of the callers is in the cluster, none of it in the standalone Redis the rest of the stack has.
 */
@ExtendWith(EnginesExtension.class)
class EdgeOnRedisClusterIT {

    @Test
    void theShippedEdgeServesCallsWithItsQuotaInARedisCluster(Engines engines, @TempDir Path workDir) throws Exception {
        String prefix = Names.unique("rcl") + ".";
        try (EmbeddedRedisCluster cluster = EmbeddedRedisCluster.launch(3, 1);
             FakeOpenAi upstream = FakeOpenAi.start();
             Stack stack = Stack.start(engines, upstream, workDir, System.out, prefix, (service, env) -> {
                 if (Stack.EDGE_JAR.equals(service)) {
                     env.put("REDIS_URI", cluster.uri());
                 }
             })) {
            List<DemoTraffic.Caller> callers = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(),
                    stack.kafka(), stack.topics(), prefix).callers();
            HttpClient http = HttpClient.newHttpClient();
            for (DemoTraffic.Caller caller : callers) {
                HttpResponse<String> answer = http.send(HttpRequest.newBuilder(stack.edgeUrl().resolve("/v1/chat/completions"))
                        .header("Authorization", "Bearer " + caller.apiKey())
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(
                                "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}"))
                        .build(), HttpResponse.BodyHandlers.ofString());
                assertThat(answer.statusCode()).as("caller %s: %s", caller.userId(), answer.body()).isEqualTo(200);
            }

            RedisClusterClient clusterClient = RedisClusterClient.create(cluster.nodeUris().stream().map(RedisURI::create).toList());
            RedisClient standalone = RedisClient.create(engines.redis().uri());
            try (StatefulRedisClusterConnection<String, String> inCluster = clusterClient.connect();
                 StatefulRedisConnection<String, String> inStandalone = standalone.connect()) {
                for (DemoTraffic.Caller caller : callers) {
                    String pattern = "{u:" + caller.userId() + "}:*";
                    assertThat(inCluster.sync().keys(pattern)).as("quota keys of %s in the cluster", caller.userId()).isNotEmpty();
                    assertThat(inStandalone.sync().keys(pattern)).as("none in the standalone Redis").isEmpty();
                }
            } finally {
                clusterClient.shutdown();
                standalone.shutdown();
            }
        }
    }
}
