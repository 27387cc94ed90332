package dev.tokenmeter.edge.quota;

import dev.tokenmeter.config.Redact;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** ADR 0080: the two forms of REDIS_URI. */
class RedisEndpointTest {

    @Test
    void aRedisUriIsStandalone() {
        RedisEndpoint e = RedisEndpoint.parse("redis://tm:secret@10.0.0.1:6380", "REDIS_URI");
        assertThat(e.cluster()).isFalse();
        assertThat(e.nodes()).singleElement().satisfies(u -> {
            assertThat(u.getHost()).isEqualTo("10.0.0.1");
            assertThat(u.getPort()).isEqualTo(6380);
            assertThat(user(u)).isEqualTo("tm");
            assertThat(new String(u.getCredentialsProvider().resolveCredentials().block().getPassword())).isEqualTo("secret");
        });
    }

    @Test
    void aClusterUriNamesSeedsThatShareTheCredentials() {
        RedisEndpoint e = RedisEndpoint.parse("redis-cluster://tm:s3cr3t@h1:7001, h2:7002,10.0.0.3:7003", "REDIS_URI");
        assertThat(e.cluster()).isTrue();
        assertThat(e.nodes()).extracting(u -> u.getHost() + ":" + u.getPort()).containsExactly("h1:7001", "h2:7002", "10.0.0.3:7003");
        assertThat(e.nodes()).allSatisfy(u -> assertThat(user(u)).isEqualTo("tm"));
        assertThat(e.nodes()).allSatisfy(u -> assertThat(new String(u.getCredentialsProvider().resolveCredentials().block().getPassword()))
                .isEqualTo("s3cr3t"));
        assertThat(RedisEndpoint.parse("redis-cluster://h1:7001", "REDIS_URI").nodes()).singleElement()
                .satisfies(u -> assertThat(u.getCredentialsProvider().resolveCredentials().block().hasPassword()).isFalse());
        assertThat(RedisEndpoint.parse("rediss-cluster://h1:7001,h2:7002", "REDIS_URI").nodes())
                .allSatisfy(u -> assertThat(u.isSsl()).isTrue());
    }

    private static String user(io.lettuce.core.RedisURI u) {
        return u.getCredentialsProvider().resolveCredentials().block().getUsername();
    }

    @Test
    void badValuesNameTheSettingNotTheSecret() {
        assertThatThrownBy(() -> RedisEndpoint.parse("redis-cluster://tm:hunter2@", "REDIS_URI"))
                .hasMessageContaining("REDIS_URI").hasMessageNotContaining("hunter2");
        assertThatThrownBy(() -> RedisEndpoint.parse("redis-cluster://tm:hunter2@h1:7001,,h2:7002", "REDIS_URI"))
                .hasMessageContaining("host:port").hasMessageNotContaining("hunter2");
        assertThatThrownBy(() -> RedisEndpoint.parse("redis-cluster://tm:hunter2@h1", "REDIS_URI"))
                .hasMessageNotContaining("hunter2");
        String tooMany = "redis-cluster://" + "h:1,".repeat(RedisEndpoint.MAX_SEEDS) + "h:1";
        assertThatThrownBy(() -> RedisEndpoint.parse(tooMany, "REDIS_URI")).hasMessageContaining("1 to " + RedisEndpoint.MAX_SEEDS);
        assertThatThrownBy(() -> RedisEndpoint.parse(" ", "REDIS_URI")).hasMessageContaining("REDIS_URI");
    }

    @Test
    void theClusterFormIsRedactedInLogs() {
        assertThat(Redact.url("redis-cluster://tm:hunter2@h1:7001,h2:7002")).doesNotContain("hunter2").contains("h1:7001,h2:7002");
    }
}
