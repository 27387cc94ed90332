package dev.tokenmeter.config;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class KafkaClientSettingsTest {

    private static final String SECRET = "s3cr\"et\\pw";

    @Test
    void plaintextByDefaultWithNoSecurityProperties() {
        KafkaClientSettings s = KafkaClientSettings.fromEnv(Map.of());
        assertThat(s.clientProperties()).containsExactly(
                Map.entry("bootstrap.servers", "127.0.0.1:9092"), Map.entry("security.protocol", "PLAINTEXT"));
        assertThat(s.authenticates()).isFalse();
    }

    @Test
    void scramLoginWithTheScramLoginModuleAndQuotedCredentials() {
        KafkaClientSettings s = KafkaClientSettings.fromEnv(Map.of("KAFKA_BOOTSTRAP_SERVERS", "k:9093",
                "KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT", "KAFKA_USERNAME", "edge", "KAFKA_PASSWORD", SECRET));
        Map<String, Object> p = s.clientProperties();
        assertThat(p).containsEntry("security.protocol", "SASL_PLAINTEXT").containsEntry("sasl.mechanism", "SCRAM-SHA-512");
        assertThat(p.get("sasl.jaas.config")).isEqualTo(
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"edge\" password=\"s3cr\\\"et\\\\pw\";");
        assertThat(p).doesNotContainKey("ssl.truststore.location");
    }

    @Test
    void saslNeedsUsernameAndPassword() {
        assertThatThrownBy(() -> KafkaClientSettings.fromEnv(Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_SSL",
                "KAFKA_USERNAME", "edge")))
                .hasMessageContaining("KAFKA_USERNAME and KAFKA_PASSWORD");
    }

    @Test
    void credentialsWithoutSaslAreRefusedRatherThanIgnored() {
        assertThatThrownBy(() -> KafkaClientSettings.fromEnv(Map.of("KAFKA_USERNAME", "edge", "KAFKA_PASSWORD", SECRET)))
                .hasMessageContaining("PLAINTEXT does not log in")
                .message().doesNotContain(SECRET);
    }

    @Test
    void unknownProtocolOrMechanismNamesTheKey() {
        assertThatThrownBy(() -> KafkaClientSettings.fromEnv(Map.of("KAFKA_SECURITY_PROTOCOL", "TLS")))
                .hasMessageContaining("KAFKA_SECURITY_PROTOCOL").hasMessageContaining("SASL_SSL");
        assertThatThrownBy(() -> KafkaClientSettings.fromEnv(Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISM", "PLAIN", "KAFKA_USERNAME", "a", "KAFKA_PASSWORD", "b")))
                .hasMessageContaining("KAFKA_SASL_MECHANISM");
    }

    @Test
    void saslSslCarriesTrustAndKeyStores() {
        Map<String, String> env = new HashMap<>(Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_SSL",
                "KAFKA_USERNAME", "sink", "KAFKA_PASSWORD", SECRET,
                "KAFKA_SSL_TRUSTSTORE_LOCATION", "/etc/kafka/ca.p12", "KAFKA_SSL_TRUSTSTORE_PASSWORD", "trustpw",
                "KAFKA_SSL_KEYSTORE_LOCATION", "/etc/kafka/sink.p12", "KAFKA_SSL_KEYSTORE_PASSWORD", "keypw"));
        KafkaClientSettings s = KafkaClientSettings.fromEnv(env);
        assertThat(s.clientProperties())
                .containsEntry("security.protocol", "SASL_SSL")
                .containsEntry("ssl.truststore.location", "/etc/kafka/ca.p12")
                .containsEntry("ssl.truststore.password", "trustpw")
                .containsEntry("ssl.truststore.type", "PKCS12")
                .containsEntry("ssl.keystore.location", "/etc/kafka/sink.p12")
                .containsEntry("ssl.keystore.password", "keypw")
                .containsEntry("ssl.endpoint.identification.algorithm", "https")
                .containsKey("sasl.jaas.config");
    }

    @Test
    void tlsSettingsAreValidated() {
        assertThatThrownBy(() -> KafkaClientSettings.fromEnv(Map.of("KAFKA_SSL_TRUSTSTORE_LOCATION", "/ca.p12")))
                .hasMessageContaining("does not use TLS");
        assertThatThrownBy(() -> KafkaClientSettings.fromEnv(Map.of("KAFKA_SECURITY_PROTOCOL", "SSL",
                "KAFKA_SSL_KEYSTORE_LOCATION", "/me.p12")))
                .hasMessageContaining("KAFKA_SSL_KEYSTORE_PASSWORD");
        assertThatThrownBy(() -> KafkaClientSettings.fromEnv(Map.of("KAFKA_SECURITY_PROTOCOL", "SSL",
                "KAFKA_SSL_TRUSTSTORE_TYPE", "P12")))
                .hasMessageContaining("KAFKA_SSL_TRUSTSTORE_TYPE");
        assertThatThrownBy(() -> KafkaClientSettings.fromEnv(Map.of("KAFKA_SECURITY_PROTOCOL", "SSL",
                "KAFKA_SSL_ENDPOINT_IDENTIFICATION", "off")))
                .hasMessageContaining("KAFKA_SSL_ENDPOINT_IDENTIFICATION");
        // TLS with the JVM's default trust and host-name checks off (a test broker) is allowed.
        assertThat(KafkaClientSettings.fromEnv(Map.of("KAFKA_SECURITY_PROTOCOL", "SSL",
                "KAFKA_SSL_ENDPOINT_IDENTIFICATION", "none")).clientProperties())
                .containsEntry("ssl.endpoint.identification.algorithm", "")
                .doesNotContainKey("ssl.truststore.location");
    }

    @Test
    void passwordsNeverInToString() {
        KafkaClientSettings s = KafkaClientSettings.fromEnv(Map.of("KAFKA_SECURITY_PROTOCOL", "SASL_SSL",
                "KAFKA_USERNAME", "edge", "KAFKA_PASSWORD", SECRET,
                "KAFKA_SSL_KEYSTORE_LOCATION", "/me.p12", "KAFKA_SSL_KEYSTORE_PASSWORD", "keystore-secret",
                "KAFKA_SSL_TRUSTSTORE_LOCATION", "/ca.p12", "KAFKA_SSL_TRUSTSTORE_PASSWORD", "truststore-secret",
                "KAFKA_SSL_KEY_PASSWORD", "key-secret"));
        assertThat(s.toString()).contains("edge", "<redacted>", "/me.p12")
                .doesNotContain(SECRET, "keystore-secret", "truststore-secret", "key-secret");
    }

    @Test
    void envReadsBackAsTheSameSettingsAndAsSwitchesPrincipal() {
        KafkaClientSettings s = KafkaClientSettings.scram("k:9093", "admin", SECRET);
        assertThat(KafkaClientSettings.fromEnv(s.env())).isEqualTo(s);
        KafkaClientSettings edge = s.as("edge", "edge-pw");
        assertThat(edge.username()).isEqualTo("edge");
        assertThat(edge.bootstrapServers()).isEqualTo("k:9093");
        assertThat((String) edge.clientProperties().get("sasl.jaas.config")).contains("username=\"edge\"");
    }
}
