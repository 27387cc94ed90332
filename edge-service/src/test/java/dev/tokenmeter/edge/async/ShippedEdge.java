package dev.tokenmeter.edge.async;

import dev.tokenmeter.db.ServiceLogins;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.DatabaseLogin;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.support.FreePorts;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * An edge from the SHIPPED jar beside a test bed (its database, Redis, topics and fake upstream), for the tests that
 * SIGKILL edges holding async jobs: {@code EDGE_INSTANCE=edge-<name>}, its own spool under {@code work}, plus
 * {@code asyncEnv} (ASYNC_STREAM, ASYNC_WORKERS, ...). {@link #launch} starts it, {@link #ready} waits for it.
 */
record ShippedEdge(ChildJvm jvm, String base) {

    static ShippedEdge launch(String name, Map<String, String> asyncEnv, Engines engines, EdgeTestBed bed, FakeOpenAi openAi,
                              Path work) throws IOException {
        int port = FreePorts.pick();
        DatabaseLogin login = engines.postgres().login(ServiceLogins.EDGE);
        Map<String, String> env = new HashMap<>(engines.kafka().clientEnv());
        env.put("EDGE_HOST", "127.0.0.1");
        env.put("EDGE_PORT", Integer.toString(port));
        env.put("ADMIN_PORT", Integer.toString(FreePorts.pick()));
        env.put("DATABASE_URL", bed.dataSource.getJdbcUrl());
        env.put("DATABASE_USER", login.user());
        env.put("DATABASE_PASSWORD", login.password());
        env.put("DATABASE_POOL_SIZE", "4");
        env.put("REDIS_URI", engines.redis().uri());
        env.put("TOPIC_PREFIX", bed.topicPrefix);
        env.put("OPENAI_API_KEY", "sk-service-kill-test");
        env.put("UPSTREAM_BASE_URL", openAi.baseUrl());
        env.put("SPOOL_DIR", Files.createDirectories(work.resolve("spool-" + name)).toString());
        env.put("EDGE_INSTANCE", "edge-" + name);
        env.put("QUOTA_REDIS_TIMEOUT_MS", "2000");
        env.putAll(asyncEnv);
        ChildJvm jvm = ChildJvm.shippedJar("edge-service", env, work.resolve("edge-" + name + ".log"), "-Xmx256m").start();
        return new ShippedEdge(jvm, "http://127.0.0.1:" + port);
    }

    /** Waits until it answers ready (fails with its log's tail if it exits or is not ready within 180 s: a loaded box starts JVMs slowly). */
    ShippedEdge ready() {
        ChildJvm.awaitHttp(URI.create(base + "/health/ready"), s -> s == 200, Duration.ofSeconds(180), jvm, List.of());
        return this;
    }
}
