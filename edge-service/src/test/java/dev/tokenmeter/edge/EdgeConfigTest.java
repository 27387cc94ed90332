package dev.tokenmeter.edge;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class EdgeConfigTest {

    @Test
    void everyKeyHasADefaultAndADescriptionAndTheDefaultsParse() {
        assertThat(EdgeConfig.KEYS).allSatisfy(k -> {
            assertThat(k.defaultValue()).isNotNull();
            assertThat(k.description()).isNotBlank();
        });
        EdgeConfig config = EdgeConfig.defaults();
        assertThat(config.port()).isEqualTo(8080);
        assertThat(config.apiKeyCacheTtl()).isEqualTo(Duration.ofSeconds(5));
        assertThat(config.maxBodyBytes()).isEqualTo(4L << 20);
        assertThat(EdgeConfig.describe()).contains("UPSTREAM_BASE_URL").contains("MAX_BODY_BYTES");
    }

    /** The Batch API's bounds (ADR 0087): 32 MiB and OpenAI's 50,000 lines by default, the poller every minute. */
    @Test
    void batchBoundsHaveTheirDefaultsAndLimits() {
        EdgeConfig config = EdgeConfig.defaults();
        assertThat(config.maxBatchFileBytes()).isEqualTo(32L << 20);
        assertThat(config.maxBatchLines()).isEqualTo(50_000);
        assertThat(config.batchPollInterval()).isEqualTo(Duration.ofSeconds(60));
        assertThat(EdgeConfig.fromEnv(Map.of("BATCH_POLL_INTERVAL", "0s")).batchPollInterval()).isZero();
        assertThatThrownBy(() -> EdgeConfig.fromEnv(Map.of("MAX_BATCH_LINES", "50001")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("MAX_BATCH_LINES");
        assertThatThrownBy(() -> EdgeConfig.fromEnv(Map.of("MAX_BATCH_FILE_BYTES", "0")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("MAX_BATCH_FILE_BYTES");
    }

    /** {@code --help} lists every key the edge reads: its own and the quota engine's. */
    @Test
    void helpListsTheEdgeAndTheQuotaKeys() {
        assertThat(EdgeApp.help()).contains("UPSTREAM_BASE_URL (default 'https://api.openai.com')")
                .contains("QUOTA_REDIS_TIMEOUT_MS (default '100')").contains("QUOTA_FAILURE_POLICY");
    }

    @Test
    void aDurationWithoutAUnitIsRefusedRatherThanGuessed() {
        assertThatThrownBy(() -> EdgeConfig.fromEnv(Map.of("UPSTREAM_REQUEST_TIMEOUT", "120")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("UPSTREAM_REQUEST_TIMEOUT").hasMessageContaining("'120'");
        assertThat(EdgeConfig.fromEnv(Map.of("UPSTREAM_REQUEST_TIMEOUT", "120s")).upstreamRequestTimeout())
                .isEqualTo(Duration.ofSeconds(120));
        // 0 would be "no timeout" to the HTTP client.
        assertThatThrownBy(() -> EdgeConfig.fromEnv(Map.of("UPSTREAM_REQUEST_TIMEOUT", "0s")))
                .hasMessageStartingWith("UPSTREAM_REQUEST_TIMEOUT must be a duration of at least 1ms");
    }

    @Test
    void badValuesFailFastNamingTheKey() {
        assertThatThrownBy(() -> EdgeConfig.fromEnv(Map.of("EDGE_PORT", "eighty")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("EDGE_PORT");
        assertThatThrownBy(() -> EdgeConfig.fromEnv(Map.of("UPSTREAM_REQUEST_TIMEOUT", "soon")))
                .hasMessageContaining("UPSTREAM_REQUEST_TIMEOUT");
        assertThatThrownBy(() -> EdgeConfig.fromEnv(Map.of("UPSTREAM_BASE_URL", "ftp://x")))
                .hasMessageContaining("UPSTREAM_BASE_URL");
        assertThatThrownBy(() -> EdgeConfig.fromEnv(Map.of("MAX_BODY_BYTES", "0")))
                .hasMessageContaining("MAX_BODY_BYTES");
        assertThatThrownBy(() -> EdgeConfig.fromEnv(Map.of("DATABASE_URL", "jdbc:mysql://x")))
                .hasMessageContaining("DATABASE_URL");
    }

    /** Issue 13: a guessable admin token stops start-up; the error names the key and never shows the value. */
    @Test
    void adminTokenShorterThan32CharactersStopsStartUpNamingTheKey() {
        String short31 = "a".repeat(31);
        assertThatThrownBy(() -> EdgeConfig.fromEnv(Map.of("ADMIN_TOKEN", short31)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("ADMIN_TOKEN must be empty (admin API off) or at least 32 characters")
                .hasMessageNotContaining(short31);
        assertThat(EdgeConfig.fromEnv(Map.of("ADMIN_TOKEN", "a".repeat(32))).adminToken()).hasSize(32);
        assertThat(EdgeConfig.fromEnv(Map.of()).adminToken()).as("empty: admin API off").isEmpty();
        EdgeConfig defaults = EdgeConfig.defaults();
        assertThat(defaults.adminHost()).isEqualTo("127.0.0.1");
        assertThat(defaults.adminPort()).isEqualTo(8081).isNotEqualTo(defaults.port());
        assertThat(EdgeConfig.fromEnv(Map.of("ADMIN_HOST", "0.0.0.0", "ADMIN_PORT", "9091")).adminPort()).isEqualTo(9091);
    }

    @Test
    void aBlankValueMeansTheDefaultAsInTheOtherServices() {
        EdgeConfig config = EdgeConfig.fromEnv(Map.of("EDGE_HOST", "", "SPOOL_DIR", " ", "UPSTREAM_REQUEST_TIMEOUT", "",
                "PERSONAL_KEY_MASTER_KEY_ID", ""));
        assertThat(config.host()).isEqualTo("127.0.0.1");
        assertThat(config.spoolDir()).isEqualTo(java.nio.file.Path.of("./spool"));
        assertThat(config.upstreamRequestTimeout()).isEqualTo(Duration.ofSeconds(120));
        assertThat(config.personalKeyMasterKeyId()).isEqualTo("k1");
    }

    @Test
    void upstreamAcceptsATrailingV1AndSecretsAreRedacted() {
        EdgeConfig config = EdgeConfig.fromEnv(Map.of("UPSTREAM_BASE_URL", "https://api.openai.com/v1/",
                "OPENAI_API_KEY", "sk-very-secret", "UPSTREAM_CONNECT_TIMEOUT", "750ms"));
        assertThat(config.upstreamBaseUrl().toString()).isEqualTo("https://api.openai.com");
        assertThat(config.upstreamConnectTimeout()).isEqualTo(Duration.ofMillis(750));
        assertThat(config.toString()).doesNotContain("sk-very-secret").contains("<redacted>");
    }

    @Test
    void credentialsInsideUrlsAreNeverPrinted() {
        // The Redis URI carries the ACL user's password; the JDBC URL may carry one too. Both go through Redact.url.
        EdgeConfig config = EdgeConfig.fromEnv(Map.of(
                "REDIS_URI", "redis://tokenmeter:s3cr3t-redis@127.0.0.1:6380/0",
                "DATABASE_URL", "jdbc:postgresql://db:5432/tm?user=edge&password=s3cr3t-db&ssl=true"));
        assertThat(config.toString())
                .doesNotContain("s3cr3t-redis").doesNotContain("s3cr3t-db")
                .contains("redisUri=redis://tokenmeter:***@127.0.0.1:6380/0")
                .contains("databaseUrl=jdbc:postgresql://db:5432/tm?user=edge&password=***&ssl=true");
        assertThat(EdgeConfig.fromEnv(Map.of("REDIS_URI", "redis://:s3cr3t-redis@redis:6379")).toString())
                .doesNotContain("s3cr3t-redis").contains("redisUri=redis://:***@redis:6379");
        assertThat(EdgeConfig.fromEnv(Map.of("REDIS_URI", "redis://redis:6379")).toString()).contains("redisUri=redis://redis:6379,");
    }
}
