package dev.tokenmeter.config;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * How a service reaches Kafka and who it is there: bootstrap servers, security protocol, SASL/SCRAM login and TLS
 * stores, read from the {@code KAFKA_*} keys ({@link #KEYS}) and turned into client properties
 * ({@link #clientProperties()}) for producers, consumers, Streams and Admin alike, so every client of a service
 * connects as the same principal. PLAINTEXT by default (a development broker); docs/adr/0062 says how the
 * deployment turns on SASL/SCRAM and TLS. Passwords never appear in {@link #toString()} or in an error.
 */
public record KafkaClientSettings(
        String bootstrapServers,
        String securityProtocol,
        String saslMechanism,
        String username,
        String password,
        String truststoreLocation,
        String truststorePassword,
        String truststoreType,
        String keystoreLocation,
        String keystorePassword,
        String keystoreType,
        String keyPassword,
        String endpointIdentification) {

    public static final List<String> PROTOCOLS = List.of("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL");
    public static final List<String> MECHANISMS = List.of("SCRAM-SHA-512", "SCRAM-SHA-256");

    /** The keys every service that talks to Kafka reads (its own list adds them). */
    public static final List<ConfigKey> KEYS = List.of(
            new ConfigKey("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", "Kafka bootstrap servers (host:port[,host:port])."),
            new ConfigKey("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "PLAINTEXT, SASL_PLAINTEXT, SASL_SSL or SSL (TLS: SASL_SSL or SSL with the KAFKA_SSL_* keys)."),
            new ConfigKey("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", "SASL mechanism with SASL_*: SCRAM-SHA-512 or SCRAM-SHA-256."),
            new ConfigKey("KAFKA_USERNAME", "", "This service's Kafka principal (SCRAM user); required with SASL_*."),
            ConfigKey.secret("KAFKA_PASSWORD", "", "Password of KAFKA_USERNAME; required with SASL_*. Never logged."),
            new ConfigKey("KAFKA_SSL_TRUSTSTORE_LOCATION", "", "Trust store with the CA of the brokers' certificates (SSL, SASL_SSL); empty = the JVM's default trust."),
            ConfigKey.secret("KAFKA_SSL_TRUSTSTORE_PASSWORD", "", "Password of the trust store (PKCS12 may have none). Never logged."),
            new ConfigKey("KAFKA_SSL_TRUSTSTORE_TYPE", "PKCS12", "PKCS12, JKS or PEM."),
            new ConfigKey("KAFKA_SSL_KEYSTORE_LOCATION", "", "Key store with this service's client certificate, for brokers that require mutual TLS; empty = none."),
            ConfigKey.secret("KAFKA_SSL_KEYSTORE_PASSWORD", "", "Password of the key store; required with a key store. Never logged."),
            new ConfigKey("KAFKA_SSL_KEYSTORE_TYPE", "PKCS12", "PKCS12, JKS or PEM."),
            ConfigKey.secret("KAFKA_SSL_KEY_PASSWORD", "", "Password of the private key in the key store, when it differs from the store's. Never logged."),
            new ConfigKey("KAFKA_SSL_ENDPOINT_IDENTIFICATION", "https", "https = check the broker's host name against its certificate; none = do not (test brokers only)."));

    private static final List<String> STORE_TYPES = List.of("PKCS12", "JKS", "PEM");

    public KafkaClientSettings {
        if (bootstrapServers == null || bootstrapServers.isBlank()) {
            throw new IllegalArgumentException("KAFKA_BOOTSTRAP_SERVERS must name at least one host:port");
        }
        if (!PROTOCOLS.contains(securityProtocol)) {
            throw new IllegalArgumentException("KAFKA_SECURITY_PROTOCOL must be one of " + String.join(", ", PROTOCOLS)
                    + ", got '" + securityProtocol + "'");
        }
        if (sasl(securityProtocol)) {
            if (!MECHANISMS.contains(saslMechanism)) {
                throw new IllegalArgumentException("KAFKA_SASL_MECHANISM must be one of " + String.join(", ", MECHANISMS)
                        + ", got '" + saslMechanism + "'");
            }
            if (username.isEmpty() || password.isEmpty()) {
                throw new IllegalArgumentException("KAFKA_SECURITY_PROTOCOL=" + securityProtocol
                        + " needs KAFKA_USERNAME and KAFKA_PASSWORD (this service's principal)");
            }
        } else if (!username.isEmpty() || !password.isEmpty()) {
            // Credentials that would be silently ignored look like security and are none.
            throw new IllegalArgumentException("KAFKA_USERNAME/KAFKA_PASSWORD are set but KAFKA_SECURITY_PROTOCOL="
                    + securityProtocol + " does not log in; use SASL_PLAINTEXT or SASL_SSL");
        }
        if (tls(securityProtocol)) {
            if (!STORE_TYPES.contains(truststoreType) || !STORE_TYPES.contains(keystoreType)) {
                throw new IllegalArgumentException("KAFKA_SSL_TRUSTSTORE_TYPE and KAFKA_SSL_KEYSTORE_TYPE must be one of "
                        + String.join(", ", STORE_TYPES) + ", got '" + truststoreType + "' and '" + keystoreType + "'");
            }
            if (!keystoreLocation.isEmpty() && keystorePassword.isEmpty() && !keystoreType.equals("PEM")) {
                throw new IllegalArgumentException("KAFKA_SSL_KEYSTORE_LOCATION is set without KAFKA_SSL_KEYSTORE_PASSWORD");
            }
        } else if (Stream.of(truststoreLocation, keystoreLocation).anyMatch(s -> !s.isEmpty())) {
            throw new IllegalArgumentException("KAFKA_SSL_* stores are set but KAFKA_SECURITY_PROTOCOL="
                    + securityProtocol + " does not use TLS; use SSL or SASL_SSL");
        }
    }

    /** Reads the {@link #KEYS} (which {@code r} must list). */
    public static KafkaClientSettings read(EnvReader r) {
        return new KafkaClientSettings(
                r.string("KAFKA_BOOTSTRAP_SERVERS"),
                r.oneOf("KAFKA_SECURITY_PROTOCOL", PROTOCOLS.toArray(String[]::new)),
                r.oneOf("KAFKA_SASL_MECHANISM", MECHANISMS.toArray(String[]::new)),
                r.string("KAFKA_USERNAME"),
                r.string("KAFKA_PASSWORD"),
                r.string("KAFKA_SSL_TRUSTSTORE_LOCATION"),
                r.string("KAFKA_SSL_TRUSTSTORE_PASSWORD"),
                r.oneOf("KAFKA_SSL_TRUSTSTORE_TYPE", STORE_TYPES.toArray(String[]::new)),
                r.string("KAFKA_SSL_KEYSTORE_LOCATION"),
                r.string("KAFKA_SSL_KEYSTORE_PASSWORD"),
                r.oneOf("KAFKA_SSL_KEYSTORE_TYPE", STORE_TYPES.toArray(String[]::new)),
                r.string("KAFKA_SSL_KEY_PASSWORD"),
                r.oneOf("KAFKA_SSL_ENDPOINT_IDENTIFICATION", "https", "none"));
    }

    /** Reads the {@link #KEYS} from {@code env} alone. */
    public static KafkaClientSettings fromEnv(Map<String, String> env) {
        return read(new EnvReader(env, KEYS));
    }

    /** A development broker without security. */
    public static KafkaClientSettings plaintext(String bootstrapServers) {
        return fromEnv(Map.of("KAFKA_BOOTSTRAP_SERVERS", bootstrapServers));
    }

    /** SASL_PLAINTEXT with SCRAM-SHA-512 as {@code username}. */
    public static KafkaClientSettings scram(String bootstrapServers, String username, String password) {
        return fromEnv(Map.of("KAFKA_BOOTSTRAP_SERVERS", bootstrapServers, "KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT",
                "KAFKA_USERNAME", username, "KAFKA_PASSWORD", password));
    }

    /** The same servers and TLS, logged in as another principal. */
    public KafkaClientSettings as(String otherUsername, String otherPassword) {
        return new KafkaClientSettings(bootstrapServers, securityProtocol, saslMechanism, otherUsername, otherPassword,
                truststoreLocation, truststorePassword, truststoreType, keystoreLocation, keystorePassword, keystoreType,
                keyPassword, endpointIdentification);
    }

    /** Kafka client properties (bootstrap.servers, security.protocol, sasl.*, ssl.*) common to every client kind. */
    public Map<String, Object> clientProperties() {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("bootstrap.servers", bootstrapServers);
        p.put("security.protocol", securityProtocol);
        if (sasl(securityProtocol)) {
            p.put("sasl.mechanism", saslMechanism);
            p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                    + jaasQuoted(username) + "\" password=\"" + jaasQuoted(password) + "\";");
        }
        if (tls(securityProtocol)) {
            p.put("ssl.endpoint.identification.algorithm", endpointIdentification.equals("none") ? "" : endpointIdentification);
            if (!truststoreLocation.isEmpty()) {
                p.put("ssl.truststore.location", truststoreLocation);
                p.put("ssl.truststore.type", truststoreType);
                if (!truststorePassword.isEmpty()) {
                    p.put("ssl.truststore.password", truststorePassword);
                }
            }
            if (!keystoreLocation.isEmpty()) {
                p.put("ssl.keystore.location", keystoreLocation);
                p.put("ssl.keystore.type", keystoreType);
                if (!keystorePassword.isEmpty()) {
                    p.put("ssl.keystore.password", keystorePassword);
                }
                if (!keyPassword.isEmpty()) {
                    p.put("ssl.key.password", keyPassword);
                }
            }
        }
        return p;
    }

    /** The environment that reads back as these settings (for a child process of the same principal). */
    public Map<String, String> env() {
        Map<String, String> e = new LinkedHashMap<>();
        List<String> values = new ArrayList<>(List.of(bootstrapServers, securityProtocol, saslMechanism, username, password,
                truststoreLocation, truststorePassword, truststoreType, keystoreLocation, keystorePassword, keystoreType,
                keyPassword, endpointIdentification));
        for (int i = 0; i < KEYS.size(); i++) {
            e.put(KEYS.get(i).name(), values.get(i));
        }
        return e;
    }

    public boolean authenticates() {
        return sasl(securityProtocol);
    }

    @Override
    public String toString() {
        return "KafkaClientSettings[bootstrapServers=" + bootstrapServers + ", securityProtocol=" + securityProtocol
                + (sasl(securityProtocol) ? ", saslMechanism=" + saslMechanism + ", username=" + username + ", password=<redacted>" : "")
                + (tls(securityProtocol) ? ", truststore=" + (truststoreLocation.isEmpty() ? "<jvm default>" : truststoreLocation)
                        + ", keystore=" + (keystoreLocation.isEmpty() ? "<none>" : keystoreLocation)
                        + ", endpointIdentification=" + endpointIdentification : "")
                + "]";
    }

    private static boolean sasl(String protocol) {
        return protocol.startsWith("SASL_");
    }

    private static boolean tls(String protocol) {
        return protocol.endsWith("SSL");
    }

    private static String jaasQuoted(String value) {
        return value.replace("\\", "\\\\").replace("\"", "\\\"");
    }
}
