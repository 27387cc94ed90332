package dev.tokenmeter.testkit.kafka;

import dev.tokenmeter.config.KafkaClientSettings;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.support.FreePorts;
import dev.tokenmeter.testkit.support.ManagedServer;
import dev.tokenmeter.testkit.support.WorkDirs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.Uuid;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A real single-node Kafka (KRaft, combined broker and controller) from Kafka's own jars, in a forked JVM.
 *
 * <p>Forked rather than in-process: the broker's threads, static state and ~300 MB heap stay out of the test
 * JVM, and {@link #stop()} is a real process death, as in production. The child runs {@link KafkaBrokerMain}
 * on the test JVM's own class path, which exits when this JVM dies. Broker output goes to
 * {@code broker.log} in the engine's temp directory, never to the test's stdout.
 *
 * <p>Secured as a production cluster: the client listener is SASL_PLAINTEXT with SCRAM-SHA-512, KRaft's
 * StandardAuthorizer refuses whatever no ACL allows, and {@link #ADMIN} (a super user, its SCRAM credential written
 * into the metadata log when the storage is formatted) is the principal of {@link #clientProperties()}. The
 * controller listener stays PLAINTEXT on loopback: the broker reaches its own controller there as
 * {@code User:ANONYMOUS}, which is therefore a super user too (SCRAM cannot authenticate a controller listener,
 * whose credentials live in the metadata it serves); no client is given that port.
 *
 * <p>{@link #launchBehindProxy} adds a second client listener for a TCP proxy in front of the broker (a slow network,
 * {@code net.DelayProxy}): a client uses its bootstrap address only for the first metadata request and then connects
 * to the address the broker advertises, so the broker must advertise the proxy's port on the listener the proxy
 * forwards to. Clients that bootstrap through the proxy then stay on it; those of {@link #bootstrapServers()} do not
 * pass through it.
 */
public final class EmbeddedKafkaEngine extends ManagedServer implements KafkaEngine {

    static final Duration START_TIMEOUT = Duration.ofSeconds(90);
    private static final Duration STOP_GRACE = Duration.ofSeconds(20);
    private static final int LOG_TAIL_LINES = 60;
    private static final String HOST = "127.0.0.1";
    /** The super user's name; its password is new for each engine. */
    public static final String ADMIN = "admin";
    /** The SCRAM credential KafkaBrokerMain adds when it formats the storage (environment of the broker JVM). */
    static final String ADMIN_SCRAM_ENV = "TOKENMETER_KAFKA_ADMIN_SCRAM";

    private final Path workDir;
    private final Path logDir;
    private final Path serverProperties;
    private final Path brokerLog;
    private final int brokerPort;
    private final int controllerPort;
    /** The port of the second client listener that a proxy forwards to, 0 when there is none. */
    private final int proxiedListenerPort;
    /** The port that listener advertises (the proxy's), 0 when there is none. */
    private final int proxyPort;
    private final KafkaClientSettings admin;
    private final KafkaTopics topics;
    private final String clusterId;
    private final String adminPassword;
    private final Member member;
    private Process process;

    /**
     * Where a node stands in a cluster ({@link EmbeddedKafkaCluster}): its id, its KRaft roles, the quorum's voters,
     * and the replication defaults every node of the cluster shares. The single engine is one combined node.
     */
    record Member(int nodeId, boolean broker, boolean controller, String quorumVoters, int replicationFactor,
                  int minInsyncReplicas) {
    }

    private EmbeddedKafkaEngine(int proxiedListenerPort, int proxyPort) {
        this(proxiedListenerPort, proxyPort, Uuid.randomUuid().toString(), Uuid.randomUuid().toString().replace("-", ""),
                null, 0, 0);
    }

    /**
     * A node of a cluster when {@code member} is set (then {@code brokerPort} / {@code controllerPort} are the ports
     * the cluster chose: a controller's port must be known to every node before any starts); the single combined
     * engine when it is null.
     */
    private EmbeddedKafkaEngine(int proxiedListenerPort, int proxyPort, String clusterId, String adminPassword,
                                Member member, int brokerPort, int controllerPort) {
        super(member == null ? "Kafka broker" : member.broker() ? "Kafka broker " + member.nodeId() : "Kafka controller");
        this.proxiedListenerPort = proxiedListenerPort;
        this.proxyPort = proxyPort;
        this.clusterId = clusterId;
        this.adminPassword = adminPassword;
        workDir = WorkDirs.create("tokenmeter-kafka-");
        logDir = workDir.resolve("data");
        serverProperties = workDir.resolve("server.properties");
        brokerLog = workDir.resolve("broker.log");
        if (member == null) {
            this.brokerPort = pickOtherThan(proxiedListenerPort, proxyPort);
            this.controllerPort = pickOtherThan(this.brokerPort, proxiedListenerPort, proxyPort);
            this.member = new Member(1, true, true, "1@" + HOST + ":" + this.controllerPort, 1, 1);
        } else {
            this.brokerPort = brokerPort;
            this.controllerPort = controllerPort;
            this.member = member;
        }
        admin = KafkaClientSettings.scram(bootstrapServers(), ADMIN, adminPassword);
        topics = new KafkaTopics(clientProperties());
        try {
            writeConfig();
        } catch (IOException e) {
            WorkDirs.deleteQuietly(workDir);
            throw new UncheckedIOException("could not write the broker config in " + workDir, e);
        }
    }

    /** Forks a broker and returns once it answers an Admin client. */
    public static EmbeddedKafkaEngine launch() {
        return launch(new EmbeddedKafkaEngine(0, 0));
    }

    /**
     * Forks a broker with a second client listener on {@code listenerPort} (same protocol and logins as the first)
     * that advertises {@code 127.0.0.1:proxyPort}: start a proxy on {@code proxyPort} forwarding to
     * {@code 127.0.0.1:listenerPort} (it may be started first: the broker is not reached until a client connects)
     * and give clients {@link #proxiedBootstrapServers()}. Both ports stay the same across {@link #stop()} and
     * {@link #start()}.
     */
    public static EmbeddedKafkaEngine launchBehindProxy(int listenerPort, int proxyPort) {
        if (listenerPort <= 0 || proxyPort <= 0 || listenerPort == proxyPort) {
            throw new IllegalArgumentException("listener port " + listenerPort + " and proxy port " + proxyPort
                    + " must be two different ports");
        }
        return launch(new EmbeddedKafkaEngine(listenerPort, proxyPort));
    }

    /**
     * Forks one node of {@link EmbeddedKafkaCluster} and returns once it serves (a broker: once an Admin client sees
     * the cluster through it; a controller: once its port accepts connections).
     */
    static EmbeddedKafkaEngine launchMember(Member member, String clusterId, String adminPassword, int brokerPort,
                                            int controllerPort) {
        return launch(new EmbeddedKafkaEngine(0, 0, clusterId, adminPassword, member, brokerPort, controllerPort));
    }

    /** This node's KRaft node.id. */
    public int nodeId() {
        return member.nodeId();
    }

    /**
     * SIGKILL (a crashed machine: no shutdown hook, no clean leader hand-off), then waits until the process is gone;
     * its data stays and {@link #start()} brings it back on the same port.
     */
    public synchronized void kill() {
        topics.close();
        Process p = process;
        if (p == null || !p.isAlive()) {
            return;
        }
        p.destroyForcibly();
        try {
            if (!p.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new IllegalStateException("the killed " + where() + " did not exit within " + STOP_GRACE);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while killing " + where(), e);
        }
        process = null;
    }

    @Override
    public String bootstrapServers() {
        return HOST + ":" + brokerPort;
    }

    /** The proxy's address (from {@link #launchBehindProxy}): clients bootstrapping here stay behind the proxy. */
    public String proxiedBootstrapServers() {
        if (proxyPort == 0) {
            throw new IllegalStateException("this broker has no listener behind a proxy (see launchBehindProxy)");
        }
        return HOST + ":" + proxyPort;
    }

    /** {@link #clientSettings()} through the proxy (from {@link #launchBehindProxy}). */
    public KafkaClientSettings proxiedClientSettings() {
        return KafkaClientSettings.scram(proxiedBootstrapServers(), ADMIN, adminPassword);
    }

    @Override
    public KafkaClientSettings clientSettings() {
        return admin;
    }

    @Override
    public void createTopic(String name, int partitions, Map<String, String> configs) {
        topics.create(name, partitions, configs);
    }

    @Override
    protected void startServer() {
        process = fork();
        awaitReady();
    }

    @Override
    protected void stopServer() {
        // The admin client first: once the broker is gone it would only retry its connection (a later createTopic
        // opens a new one).
        topics.close();
        Process p = process;
        process = null;
        p.destroy(); // SIGTERM: kafka.Kafka's shutdown hook shuts the broker down cleanly
        try {
            if (!p.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                p.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS);
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    @Override
    protected boolean running() {
        return process != null && process.isAlive();
    }

    @Override
    protected String where() {
        return (member.broker() ? bootstrapServers() : HOST + ":" + controllerPort) + " (log: " + brokerLog + ")";
    }

    /** The broker's log file (for diagnosing a failed test). */
    public Path brokerLog() {
        return brokerLog;
    }

    @Override
    protected void release() {
        WorkDirs.deleteQuietly(workDir);
    }

    private void writeConfig() throws IOException {
        Files.createDirectories(logDir);
        Files.createDirectories(workDir.resolve("tmp"));
        String jaas = String.valueOf(admin.clientProperties().get("sasl.jaas.config"));
        // PROXIED: a second SASL_PLAINTEXT listener that a proxy forwards to, advertising the proxy's port.
        boolean proxied = proxiedListenerPort != 0;
        int rf = member.replicationFactor();
        String listeners = (member.broker() ? "SASL_PLAINTEXT://" + HOST + ":" + brokerPort : "")
                + (member.broker() && member.controller() ? "," : "")
                + (member.controller() ? "CONTROLLER://" + HOST + ":" + controllerPort : "")
                + (proxied ? ",PROXIED://" + HOST + ":" + proxiedListenerPort : "");
        String config = String.join("\n",
                "process.roles=" + (member.broker() && member.controller() ? "broker,controller"
                        : member.broker() ? "broker" : "controller"),
                "node.id=" + member.nodeId(),
                "controller.quorum.voters=" + member.quorumVoters(),
                "listeners=" + listeners,
                member.broker() ? "advertised.listeners=SASL_PLAINTEXT://" + HOST + ":" + brokerPort
                        + (proxied ? ",PROXIED://" + HOST + ":" + proxyPort : "") : "",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=SASL_PLAINTEXT",
                "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
                        + (proxied ? ",PROXIED:SASL_PLAINTEXT" : ""),
                "sasl.enabled.mechanisms=SCRAM-SHA-512",
                "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
                "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=" + jaas,
                proxied ? "listener.name.proxied.scram-sha-512.sasl.jaas.config=" + jaas : "",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users=User:" + ADMIN + ";User:ANONYMOUS",
                "allow.everyone.if.no.acl.found=false",
                "log.dirs=" + logDir.toAbsolutePath().toString().replace('\\', '/'),
                "num.partitions=1",
                "default.replication.factor=" + rf,
                "min.insync.replicas=" + member.minInsyncReplicas(),
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=" + rf,
                // Fewer internal partitions than the default 50: the first consumer group and the first
                // transaction on a fresh broker are then ready in well under a second.
                "offsets.topic.num.partitions=5",
                "transaction.state.log.replication.factor=" + rf,
                "transaction.state.log.min.isr=" + member.minInsyncReplicas(),
                "transaction.state.log.num.partitions=5",
                "share.coordinator.state.topic.replication.factor=" + rf,
                "share.coordinator.state.topic.min.isr=" + member.minInsyncReplicas(),
                "group.initial.rebalance.delay.ms=0",
                "num.network.threads=2",
                "num.io.threads=4",
                "log.cleaner.dedupe.buffer.size=8388608",
                // In a cluster, a killed broker is fenced (leaders moved, dropped from every ISR) after 6 s without
                // heartbeats instead of 9; not shorter: a starved broker on a loaded 2-core box must not be fenced.
                member.replicationFactor() > 1 ? "broker.heartbeat.interval.ms=1000" : "",
                member.replicationFactor() > 1 ? "broker.session.timeout.ms=6000" : "",
                "");
        Files.writeString(serverProperties, config);
        Files.writeString(workDir.resolve("broker-logback.xml"), """
                <configuration>
                  <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
                    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{36} - %msg%n</pattern></encoder>
                  </appender>
                  <logger name="org.apache.kafka.clients" level="WARN"/>
                  <root level="INFO"><appender-ref ref="OUT"/></root>
                </configuration>
                """);
    }

    private Process fork() {
        List<String> command = new ArrayList<>();
        command.add(javaExecutable());
        command.add("-Xms128m");
        command.add("-Xmx512m");
        command.add("-XX:+UseSerialGC");
        // C1 only: the broker starts markedly faster on a small machine; tests need no peak throughput.
        command.add("-XX:TieredStopAtLevel=1");
        command.add("-Djava.awt.headless=true");
        // The broker's temporary files (native libraries it unpacks) in its work directory, deleted with it at close
        // even if the broker had to be killed (the JVM would take /tmp, whatever TMPDIR says).
        command.add("-Djava.io.tmpdir=" + workDir.resolve("tmp").toAbsolutePath());
        // The test JVM's class path also carries its logback-test.xml (Kafka at WARN); the broker's own file
        // keeps INFO so a failed start can be diagnosed from broker.log.
        command.add("-Dlogback.configurationFile=" + workDir.resolve("broker-logback.xml").toAbsolutePath());
        // The class path through an argument file: no limit on its length (an environment variable or a
        // single argument may hold at most 128 KiB on Linux), no quoting rules of a shell.
        command.add("@" + writeClassPathArgFile());
        command.add(KafkaBrokerMain.class.getName());
        command.add(Long.toString(ProcessHandle.current().pid()));
        command.add(serverProperties.toAbsolutePath().toString());
        command.add(clusterId);

        ProcessBuilder builder = new ProcessBuilder(command)
                .directory(workDir.toFile())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(brokerLog.toFile()));
        builder.environment().remove("CLASSPATH");
        builder.environment().remove("JAVA_TOOL_OPTIONS");
        builder.environment().remove("JDK_JAVA_OPTIONS");
        // Through the environment, not an argument: the password stays out of the process list.
        builder.environment().put(ADMIN_SCRAM_ENV, "SCRAM-SHA-512=[name=" + ADMIN + ",password=" + adminPassword + "]");
        try {
            return builder.start();
        } catch (IOException e) {
            throw new UncheckedIOException("could not fork the Kafka broker JVM: " + command, e);
        }
    }

    private void awaitReady() {
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        Exception lastError = null;
        if (!member.broker()) {
            awaitControllerPort(deadline);
            return;
        }
        try {
            // A plain TCP probe first: an Admin client retrying against a closed port only logs noise.
            while (!accepts() && System.nanoTime() < deadline) {
                if (!process.isAlive()) {
                    throw failure("the Kafka broker exited with code " + process.exitValue() + " during start-up", null);
                }
                Thread.sleep(50);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw failure("interrupted while waiting for the Kafka broker", e);
        }
        try (Admin client = KafkaTopics.newAdmin(clientProperties())) {
            while (System.nanoTime() < deadline) {
                if (!process.isAlive()) {
                    throw failure("the Kafka broker exited with code " + process.exitValue() + " during start-up", null);
                }
                try {
                    // this broker itself registered (in a cluster the others may be listed before it is)
                    if (client.describeCluster().nodes().get(5, TimeUnit.SECONDS).stream()
                            .anyMatch(n -> n.id() == member.nodeId())) {
                        return;
                    }
                } catch (ExecutionException | TimeoutException e) {
                    lastError = e;
                }
                Thread.sleep(100);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw failure("interrupted while waiting for the Kafka broker", e);
        }
        stop();
        throw failure("the Kafka broker did not become ready within " + START_TIMEOUT.toSeconds() + "s", lastError);
    }

    private void awaitControllerPort(long deadline) {
        try {
            while (!FreePorts.accepts(HOST, controllerPort, 500)) {
                if (!process.isAlive()) {
                    throw failure("the Kafka controller exited with code " + process.exitValue() + " during start-up", null);
                }
                if (System.nanoTime() > deadline) {
                    stop();
                    throw failure("the Kafka controller did not listen within " + START_TIMEOUT.toSeconds() + "s", null);
                }
                Thread.sleep(50);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw failure("interrupted while waiting for the Kafka controller", e);
        }
    }

    /** A free port that is none of {@code taken} (0 entries ignored). */
    private static int pickOtherThan(int... taken) {
        while (true) {
            int port = FreePorts.pick();
            if (java.util.Arrays.stream(taken).noneMatch(t -> t == port)) {
                return port;
            }
        }
    }

    private boolean accepts() {
        return FreePorts.accepts(HOST, brokerPort, 500);
    }

    private IllegalStateException failure(String what, Throwable cause) {
        return new IllegalStateException(what + " (" + bootstrapServers() + ", controller port " + controllerPort
                + "). Last " + LOG_TAIL_LINES + " lines of " + brokerLog + ":\n"
                + WorkDirs.tail(brokerLog, LOG_TAIL_LINES), cause);
    }

    private String writeClassPathArgFile() {
        Path argFile = workDir.resolve("classpath.args");
        String quoted = absoluteClassPath().replace("\\", "\\\\").replace("\"", "\\\"");
        try {
            Files.writeString(argFile, "-cp \"" + quoted + "\"\n");
        } catch (IOException e) {
            throw new UncheckedIOException("could not write " + argFile, e);
        }
        return argFile.toAbsolutePath().toString();
    }

    /** The child runs in the work dir, so relative entries (an IDE's or a plain {@code java -cp target/classes}) are resolved here. */
    private static String absoluteClassPath() {
        List<String> entries = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (entry.isEmpty()) {
                continue;
            }
            try {
                entries.add(Paths.get(entry).toAbsolutePath().toString());
            } catch (InvalidPathException e) {
                entries.add(entry); // e.g. a "lib/*" wildcard on Windows
            }
        }
        return String.join(File.pathSeparator, entries);
    }

    /** This JVM's own java (java.home), else the command this process was started with. */
    private static String javaExecutable() {
        Path java = Paths.get(System.getProperty("java.home"), "bin", isWindows() ? "java.exe" : "java");
        if (Files.isExecutable(java)) {
            return java.toString();
        }
        return ProcessHandle.current().info().command()
                .orElseThrow(() -> new IllegalStateException("cannot find a java executable to fork the Kafka broker"));
    }

    private static boolean isWindows() {
        return System.getProperty("os.name", "").toLowerCase().startsWith("windows");
    }
}
