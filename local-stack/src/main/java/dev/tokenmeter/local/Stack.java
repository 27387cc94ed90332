package dev.tokenmeter.local;

import dev.tokenmeter.config.Redact;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.support.WorkDirs;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The three services, each in its own JVM from its shipped jar exactly as the Dockerfile starts it
 * ({@code java -jar <module>-*-all.jar}), configured by environment variables only (the same keys
 * docker-compose.yml sets), on top of running engines (ADR 0063).
 */
final class Stack implements AutoCloseable {

    static final String EDGE_JAR = "edge-service";
    static final String AGGREGATOR_JAR = "aggregator-streams";
    static final String SINK_JAR = "billing-sink";
    /** The edge's own OpenAI key: the service's organization, whose calls OpenAI's Usage API reports (ADR 0086). */
    static final String DEMO_SERVICE_KEY = "sk-demo-service-key";
    static final String NOTIFIER_JAR = "alert-notifier";
    /** The lines the aggregator and the sink print once they consume (their health is not served over HTTP). */
    static final String AGGREGATOR_READY = "READY application.id=";
    static final String SINK_READY = "READY group=";

    /**
     * How long each service may take after SIGTERM before it is killed: the edge 60 s (docker-compose's
     * stop_grace_period: calls under way, their settles, the event flush), the others Docker's default 10 s.
     */
    static final Duration EDGE_GRACE = Duration.ofSeconds(60);
    static final Duration GRACE = Duration.ofSeconds(10);
    private static final Duration START_TIMEOUT = Duration.ofSeconds(180);

    /** Admin endpoint of the edge and its token. */
    record EdgeAdmin(URI baseUrl, String token) {
    }

    /** Admin endpoint of the alert-notifier (its /admin/webhooks) and its token. */
    record NotifierAdmin(URI baseUrl, String token) {
    }

    private final Engines engines;
    private final FakeOpenAi upstream;
    /** The edge's spool, the aggregator's state, the services' temporary files: this run's only, deleted at close. */
    private final List<Path> runDirs = new ArrayList<>();
    private final String jdbcUrl;
    private final URI edgeUrl;
    private final EdgeAdmin edgeAdmin;
    private final Topics topics;
    final ChildJvm edge;
    final ChildJvm aggregator;
    final ChildJvm sink;
    /** KAFKA_* of the analysts' read-only principal, for {@link TailTopic} (owner-readable only). */
    final Path analystEnv;
    private final List<ChildJvm> all = new ArrayList<>();
    private final Path spoolDir;
    private final String aggregatorGroupId;
    private final String sinkGroupId;
    private final Map<String, String> databaseUsers;
    /** The alert-notifier's environment and JVM flags; it runs only when {@link #startNotifier} is called. */
    private final Map<String, String> notifierEnv;
    private final String[] jvmFlags;
    private final Path workDir;
    /** One running instance of a scalable service; {@code url} is an edge's, null for the others. */
    private record Instance(int number, ChildJvm jvm, Map<String, String> env, URI url) {
    }

    /** Each service's environment as adjusted, for {@link #startInstance}. */
    private final Map<String, Map<String, String>> envs = new HashMap<>();
    /** The edges' public URLs: this stack's first edge, then any second one. */
    private final List<URI> edgeUrls = new ArrayList<>();
    private final List<ChildJvm> edges = new ArrayList<>();
    private final NotifierAdmin notifierAdmin;
    private ChildJvm notifier;
    /** The running instances of the edge, the aggregator and the sink by number (the first is 1). */
    private final Map<String, TreeMap<Integer, Instance>> instances = new HashMap<>();
    /** The highest instance number given so far per service: a stopped instance's number is not reused. */
    private final Map<String, Integer> lastNumber = new HashMap<>();

    /**
     * Changes a service's environment before it starts (tests only): e.g. point it at a proxy in front of an engine
     * instead of the engine ({@code SlowNetworkIT}). Called once per service with its jar name and its environment.
     */
    @FunctionalInterface
    interface ServiceEnv {
        ServiceEnv AS_IS = (service, env) -> { };

        void adjust(String service, Map<String, String> env);
    }

    private Stack(Engines engines, FakeOpenAi upstream, Path workDir, String jdbcUrl, String prefix, Topics topics,
                  StackInit init, ServiceEnv serviceEnv) {
        this.engines = engines;
        this.topics = topics;
        this.upstream = upstream;
        this.jdbcUrl = jdbcUrl;
        int edgePort = freePort();
        this.edgeUrl = URI.create("http://127.0.0.1:" + edgePort);
        String adminToken = "demo-admin-" + StackInit.randomToken();
        int adminPort = freePort();
        this.edgeAdmin = new EdgeAdmin(URI.create("http://127.0.0.1:" + adminPort), adminToken);

        // Each service logs in as its own principal with only its ACLs, and to Postgres as its own role (V12, ADR
        // 0060), never as the schema's owner (the aggregator gets none): the logins the init step made.
        Map<String, String> edgeEnv = serviceEnv(prefix, init.kafkaEnv("edge"));
        putDatabase(edgeEnv, jdbcUrl, init.edgeDatabase());
        edgeEnv.put("EDGE_HOST", "127.0.0.1");
        edgeEnv.put("EDGE_PORT", Integer.toString(edgePort));
        edgeEnv.put("REDIS_URI", engines.redis().uri());
        edgeEnv.put("UPSTREAM_BASE_URL", upstream.baseUrl());
        edgeEnv.put("OPENAI_API_KEY", DEMO_SERVICE_KEY);
        edgeEnv.put("ADMIN_TOKEN", adminToken);
        edgeEnv.put("ADMIN_HOST", "127.0.0.1");
        edgeEnv.put("ADMIN_PORT", Integer.toString(adminPort));
        edgeEnv.put("METRICS_PORT", "0"); // the /metrics-only listener Prometheus scrapes (AlertMetricsIT)
        edgeEnv.put("PERSONAL_KEY_MASTER_KEY_ID", DemoData.MASTER_KEY_ID);
        edgeEnv.put("PERSONAL_KEY_MASTER_KEY", DemoData.MASTER_KEY_BASE64);
        Path spoolDir = workDir.resolve("edge-spool").toAbsolutePath();
        Path stateDir = workDir.resolve("aggregator-state").toAbsolutePath();
        Path tmpDir = workDir.resolve("tmp").toAbsolutePath();
        runDirs.addAll(List.of(spoolDir, stateDir, tmpDir));
        this.workDir = workDir;
        this.spoolDir = spoolDir;
        this.aggregatorGroupId = init.aggregatorApplicationId();
        this.sinkGroupId = init.sinkGroupId();
        this.databaseUsers = Map.of(EDGE_JAR, init.edgeDatabase().user(), SINK_JAR, init.sinkDatabase().user());
        edgeEnv.put("SPOOL_DIR", spoolDir.toString());
        edgeEnv.put("AGGREGATOR_APPLICATION_ID", init.aggregatorApplicationId()); // the dashboard's aggregator lag
        edgeEnv.put("EDGE_INSTANCE", "edge-local-1");
        // Four JVMs and three engines share a laptop's cores here: allow Redis a slower answer than the
        // production default (100 ms) before the breaker counts a failure.
        edgeEnv.put("QUOTA_REDIS_TIMEOUT_MS", "1000");

        Map<String, String> aggregatorEnv = serviceEnv(prefix, init.kafkaEnv("aggregator"));
        aggregatorEnv.put("APPLICATION_ID", init.aggregatorApplicationId());
        aggregatorEnv.put("STATE_DIR", stateDir.toString());
        aggregatorEnv.put("METRICS_PORT", "0");
        aggregatorEnv.put("INSTANCE_ID", prefix + "aggregator-1");

        Map<String, String> sinkEnv = serviceEnv(prefix, init.kafkaEnv("billing-sink"));
        putDatabase(sinkEnv, jdbcUrl, init.sinkDatabase());
        sinkEnv.put("GROUP_ID", init.sinkGroupId());
        sinkEnv.put("METRICS_PORT", "0");
        sinkEnv.put("INSTANCE_ID", prefix + "sink-1");

        Map<String, String> notifierEnv = serviceEnv(prefix, init.kafkaEnv(NOTIFIER_JAR));
        putDatabase(notifierEnv, jdbcUrl, init.notifierDatabase());
        notifierEnv.put("GROUP_ID", init.notifierGroupId());
        notifierEnv.put("INSTANCE_ID", prefix + "notifier-1");
        int notifierAdminPort = freePort();
        String notifierToken = "demo-notifier-" + StackInit.randomToken();
        notifierEnv.put("ADMIN_HOST", "127.0.0.1");
        notifierEnv.put("ADMIN_PORT", Integer.toString(notifierAdminPort));
        notifierEnv.put("ADMIN_TOKEN", notifierToken);
        // A demo's receiver is on this machine: retry briefly and give up soon rather than for 24 h.
        notifierEnv.put("DELIVERY_RETRY_FOR", "2m");
        this.notifierAdmin = new NotifierAdmin(URI.create("http://127.0.0.1:" + notifierAdminPort), notifierToken);
        this.notifierEnv = notifierEnv;

        Path logs = workDir.resolve("logs");
        Map<String, String> analyst = new TreeMap<>(init.kafkaEnv("analyst"));
        analyst.put("KAFKA_GROUP_PREFIX", init.analystGroupPrefix());
        analystEnv = writeOwnerOnly(logs.resolve("analyst-kafka.env"), analyst);
        // JVM sizing only, nothing the service reads: four JVMs and three engines share a laptop's (or CI's) cores
        // and memory, so a small heap and the single-threaded collector; the Dockerfile's ExitOnOutOfMemoryError.
        // Their own java.io.tmpdir, removed at close: the native libraries a service unpacks there (Kafka's lz4,
        // RocksDB) go even when it had to be killed and its delete-on-exit never ran (LauncherExitIT).
        createDirectories(tmpDir);
        String[] jvm = {"-Xmx384m", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError", "-Djava.io.tmpdir=" + tmpDir};
        serviceEnv.adjust(EDGE_JAR, edgeEnv);
        serviceEnv.adjust(AGGREGATOR_JAR, aggregatorEnv);
        serviceEnv.adjust(SINK_JAR, sinkEnv);
        edge = ChildJvm.shippedJar(EDGE_JAR, edgeEnv, logs.resolve("edge-service.log"), jvm);
        aggregator = ChildJvm.shippedJar(AGGREGATOR_JAR, aggregatorEnv, logs.resolve("aggregator-streams.log"), jvm);
        sink = ChildJvm.shippedJar(SINK_JAR, sinkEnv, logs.resolve("billing-sink.log"), jvm);
        all.addAll(List.of(sink, aggregator, edge));
        this.jvmFlags = jvm;
        envs.putAll(Map.of(EDGE_JAR, edgeEnv, AGGREGATOR_JAR, aggregatorEnv, SINK_JAR, sinkEnv));
        edgeUrls.add(edgeUrl);
        edges.add(edge);
        instances.put(EDGE_JAR, new TreeMap<>(Map.of(1, new Instance(1, edge, Map.copyOf(edgeEnv), edgeUrl))));
        instances.put(AGGREGATOR_JAR, new TreeMap<>(Map.of(1, new Instance(1, aggregator, Map.copyOf(aggregatorEnv), null))));
        instances.put(SINK_JAR, new TreeMap<>(Map.of(1, new Instance(1, sink, Map.copyOf(sinkEnv), null))));
        List.of(EDGE_JAR, AGGREGATOR_JAR, SINK_JAR).forEach(service -> lastNumber.put(service, 1));
    }

    /**
     * Starts the alert-notifier from its shipped jar, as its own Kafka principal and database login (the init step's),
     * and waits for its READY line. Only {@code ./run-pipeline} runs it; the pipeline's tests do not need it.
     */
    synchronized NotifierAdmin startNotifier(PrintStream out) {
        long t0 = System.nanoTime();
        notifier = ChildJvm.shippedJar(NOTIFIER_JAR, notifierEnv, logsDir().resolve("alert-notifier.log"), jvmFlags);
        all.add(0, notifier);
        notifier.start();
        notifier.awaitPrinted("READY group=", START_TIMEOUT, all);
        out.printf("notifier    admin %s ready after %.1fs, %s%n", notifierAdmin.baseUrl(), (System.nanoTime() - t0) / 1e9,
                jarName(notifier));
        return notifierAdmin;
    }


    /**
     * Issue 18: a second edge, aggregator and sink beside the first, from the same jars with the same environment but
     * their own listeners, spool, state directory and instance id ({@link #startInstance}). The aggregator joins the
     * first one's application id and the sink its group, so Kafka splits the partitions between the two of each (a
     * rebalance, under EOS for the aggregator); the edges share Redis, so their quota decisions and response cache are
     * one. Waits until each is ready; the demo's traffic then goes to both edges in turn ({@link #edgeUrls()}).
     */
    synchronized void startSecondInstances(PrintStream out) {
        long t0 = System.nanoTime();
        List<Instance> more = List.of(prepareInstance(SINK_JAR), prepareInstance(AGGREGATOR_JAR), prepareInstance(EDGE_JAR));
        more.forEach(i -> i.jvm().start());
        more.forEach(this::awaitReady);
        String ready = String.format("ready after %.1fs", (System.nanoTime() - t0) / 1e9);
        out.println("edge 2      " + more.get(2).url() + " " + ready + " (same Redis, Kafka and database as edge 1)");
        out.println("aggregator 2 and sink 2 " + ready + " (same application id and group: the partitions are split)");
    }

    /**
     * One more instance of a service ({@link #EDGE_JAR}, {@link #AGGREGATOR_JAR} or {@link #SINK_JAR}) beside those
     * running, numbered after every instance started so far: the same jar and environment as the first, its own
     * listeners (edge), spool (edge), state directory (aggregator) and instance id, so an aggregator joins the
     * application id and a sink the groups (a rebalance). Waits until it is ready; returns its number.
     */
    synchronized int startInstance(String service, PrintStream out) {
        long t0 = System.nanoTime();
        Instance instance = prepareInstance(service);
        instance.jvm().start();
        awaitReady(instance);
        out.printf("%s %d started, ready after %.1fs%n", service, instance.number(), (System.nanoTime() - t0) / 1e9);
        return instance.number();
    }

    /**
     * Scale down: SIGTERM to instance {@code n} of a service, SIGKILL only after its grace period (as {@link #close});
     * an edge's URL leaves {@link #edgeUrls()}. Returns how the stop went.
     */
    ChildJvm.Stopped stopInstance(String service, int n) {
        Instance instance;
        synchronized (this) { // not while it stops: several may stop at once
            instance = instances.get(service).remove(n);
            if (instance == null) {
                throw new IllegalArgumentException(service + " has no running instance " + n + "; running: "
                        + instances.get(service).keySet());
            }
            if (instance.url() != null) {
                edgeUrls.remove(instance.url());
            }
            // No longer watched: a start-up waits fail when a watched service exits, and this one is meant to.
            all.remove(instance.jvm());
        }
        return instance.jvm().terminate(EDGE_JAR.equals(service) ? EDGE_GRACE : GRACE);
    }

    /** The numbers of the running instances of a service, in order (the first one is 1). */
    synchronized List<Integer> instanceNumbers(String service) {
        return List.copyOf(instances.get(service).keySet());
    }

    /** Instance {@code n} of a service (running, or killed by a drill and not stopped through {@link #stopInstance}). */
    synchronized ChildJvm instance(String service, int n) {
        return running(service, n).jvm();
    }

    /** The INSTANCE_ID of instance {@code n} of the aggregator or the sink (their static group membership's id). */
    synchronized String instanceId(String service, int n) {
        return running(service, n).env().get("INSTANCE_ID");
    }

    /** The public URL of edge {@code n}. */
    synchronized URI edgeUrl(int n) {
        return running(EDGE_JAR, n).url();
    }

    /** The spool directory of edge {@code n}. */
    synchronized Path spoolDir(int n) {
        return Path.of(running(EDGE_JAR, n).env().get("SPOOL_DIR"));
    }

    private Instance running(String service, int n) {
        Instance instance = instances.get(service).get(n);
        if (instance == null) {
            throw new IllegalArgumentException(service + " has no running instance " + n);
        }
        return instance;
    }

    /** Builds (does not start) the next instance of a service, with its own ports, directories and instance id. */
    private Instance prepareInstance(String service) {
        int n = lastNumber.merge(service, 1, Integer::sum);
        Map<String, String> env = new HashMap<>(envs.get(service));
        URI url = null;
        switch (service) {
            case EDGE_JAR -> {
                int port = freePort();
                env.put("EDGE_PORT", Integer.toString(port));
                env.put("ADMIN_PORT", Integer.toString(freePort()));
                Path spool = workDir.resolve("edge-spool-" + n).toAbsolutePath();
                runDirs.add(spool);
                env.put("SPOOL_DIR", spool.toString());
                env.put("EDGE_INSTANCE", "edge-local-" + n);
                url = URI.create("http://127.0.0.1:" + port);
            }
            case AGGREGATOR_JAR -> {
                Path state = workDir.resolve("aggregator-state-" + n).toAbsolutePath();
                runDirs.add(state);
                env.put("STATE_DIR", state.toString());
                env.put("INSTANCE_ID", env.get("INSTANCE_ID").replaceFirst("-1$", "-" + n));
            }
            case SINK_JAR -> env.put("INSTANCE_ID", env.get("INSTANCE_ID").replaceFirst("-1$", "-" + n));
            default -> throw new IllegalArgumentException("not a scalable service: " + service);
        }
        ChildJvm jvm = ChildJvm.shippedJar(service, env, logsDir().resolve(service + "-" + n + ".log"), jvmFlags);
        all.add(0, jvm);
        if (url != null) {
            edges.add(jvm);
        }
        Instance instance = new Instance(n, jvm, Map.copyOf(env), url);
        instances.get(service).put(n, instance);
        return instance;
    }

    private void awaitReady(Instance instance) {
        if (instance.url() != null) {
            ChildJvm.awaitHttp(instance.url().resolve("/health/ready"), status -> status == 200, START_TIMEOUT, instance.jvm(), all);
            edgeUrls.add(instance.url());
        } else {
            instance.jvm().awaitPrinted(AGGREGATOR_JAR.equals(instance.jvm().name()) ? AGGREGATOR_READY : SINK_READY,
                    START_TIMEOUT, all);
        }
    }

    /**
     * The partitions each member of a consumer group holds right now, one entry per member (its member id): with two
     * instances of a service, two entries that each hold some.
     */
    Map<String, Integer> partitionsPerMember(String groupId) {
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(kafka())) {
            var group = admin.describeConsumerGroups(List.of(groupId)).all().get(30, java.util.concurrent.TimeUnit.SECONDS).get(groupId);
            Map<String, Integer> members = new TreeMap<>();
            group.members().forEach(m -> members.put(m.consumerId(), m.assignment().topicPartitions().size()));
            return members;
        } catch (Exception e) {
            throw new IllegalStateException("cannot describe consumer group " + groupId, e);
        }
    }

    /**
     * A consumer group as the broker sees it: its state, each member's static id ({@code group.instance.id}: the
     * service's INSTANCE_ID plus {@code -<stream thread>} or {@code -<sink loop>}), the partitions assigned and the
     * partitions of the topics it consumes (those it holds or has committed offsets for).
     */
    record GroupStatus(String state, List<String> memberIds, int assigned, int partitions) {
        /**
         * Stable, every partition assigned, and the members exactly those of {@code instanceIds}: a departed static
         * member is still listed, with its partitions, until its session times out.
         */
        boolean settledOn(java.util.Collection<String> instanceIds) {
            java.util.Set<String> seen = new java.util.HashSet<>();
            for (String member : memberIds) {
                String owner = instanceIds.stream().filter(id -> member.startsWith(id + "-")).findFirst().orElse(null);
                if (owner == null) {
                    return false;
                }
                seen.add(owner);
            }
            return "STABLE".equals(state) && partitions > 0 && assigned == partitions && seen.size() == instanceIds.size();
        }
    }

    /** {@link GroupStatus} of each group, by group id, through one admin client. */
    Map<String, GroupStatus> groupStatus(List<String> groupIds) {
        java.util.concurrent.TimeUnit seconds = java.util.concurrent.TimeUnit.SECONDS;
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(kafka())) {
            Map<String, GroupStatus> statuses = new TreeMap<>();
            var groups = admin.describeConsumerGroups(groupIds).all().get(30, seconds);
            for (String groupId : groupIds) {
                var group = groups.get(groupId);
                java.util.Set<String> topics = new java.util.TreeSet<>();
                List<String> members = new ArrayList<>();
                int assigned = 0;
                for (var m : group.members()) {
                    members.add(m.groupInstanceId().orElse(m.consumerId()));
                    assigned += m.assignment().topicPartitions().size();
                    m.assignment().topicPartitions().forEach(tp -> topics.add(tp.topic()));
                }
                admin.listConsumerGroupOffsets(groupId).partitionsToOffsetAndMetadata().get(30, seconds)
                        .keySet().forEach(tp -> topics.add(tp.topic()));
                int partitions = topics.isEmpty() ? 0 : admin.describeTopics(topics).allTopicNames().get(30, seconds)
                        .values().stream().mapToInt(t -> t.partitions().size()).sum();
                members.sort(null);
                statuses.put(groupId, new GroupStatus(group.groupState().name(), members, assigned, partitions));
            }
            return statuses;
        } catch (Exception e) {
            throw new IllegalStateException("cannot describe consumer groups " + groupIds, e);
        }
    }

    /** The demo's stack: un-prefixed topic names. */
    static Stack start(Engines engines, FakeOpenAi upstream, Path workDir, PrintStream out) {
        return start(engines, upstream, workDir, out, "");
    }

    /** What every service is given: its Kafka login and the topics' prefix. */
    private static Map<String, String> serviceEnv(String prefix, Map<String, String> kafka) {
        Map<String, String> env = new HashMap<>(kafka);
        env.put("TOPIC_PREFIX", prefix);
        return env;
    }

    private static void putDatabase(Map<String, String> env, String jdbcUrl, StackInit.Login login) {
        env.put("DATABASE_URL", jdbcUrl);
        env.put("DATABASE_USER", login.user());
        env.put("DATABASE_PASSWORD", login.password());
    }

    /** Where Redis is and who logs in, never the password (the services get it in REDIS_URI). */
    private static String redisWhere(Engines engines) {
        return engines.redis().host() + ":" + engines.redis().port() + "  user " + engines.redis().user() + " (password not printed)";
    }

    /**
     * A stack whose topic names, consumer groups and application ids all start with {@code prefix}, so several
     * can share one broker (tests), on a fresh database; provisioned by the deployment's init step ({@link StackInit}).
     */

    static Stack start(Engines engines, FakeOpenAi upstream, Path workDir, PrintStream out, String prefix) {
        return start(engines, upstream, workDir, out, prefix, ServiceEnv.AS_IS);
    }

    /** {@link #start(Engines, FakeOpenAi, Path, PrintStream, String)} with each service's environment adjusted first. */
    static Stack start(Engines engines, FakeOpenAi upstream, Path workDir, PrintStream out, String prefix,
                       ServiceEnv serviceEnv) {
        long t0 = System.nanoTime();
        String bootstrap = engines.kafka().bootstrapServers();
        out.println("kafka       " + bootstrap);
        out.println("redis       " + redisWhere(engines));
        String jdbcUrl = engines.postgres().createDatabase("tokenmeter");
        out.println("postgres    " + Redact.url(jdbcUrl));
        out.println("upstream    " + upstream.baseUrl() + " (fake OpenAI)");
        // Topics, principals and ACLs, the schema and the services' logins: made as the deployment makes them.
        StackInit init = StackInit.run(engines, jdbcUrl, prefix);
        // Before the edge starts, so its price book has them from its first load (the demo's flex and priority calls).
        DemoData.seedTierPrices(jdbcUrl, engines.postgres().user(), engines.postgres().password());
        Topics topics = Topics.withPrefix(prefix, Topics.DEFAULT_PARTITIONS);
        Stack stack = new Stack(engines, upstream, workDir, jdbcUrl, prefix, topics, init, serviceEnv);
        try {
            stack.all.forEach(ChildJvm::start);
            // Generous: on a shared 2-core box under load the edge once needed more than 90 s to be ready (fault run of
            // 2026-12-03, its jar logging at DEBUG); a process that dies is reported at once anyway.
            stack.awaitEdgeReady(START_TIMEOUT);
            stack.awaitConsumersReady(START_TIMEOUT);
        } catch (RuntimeException e) {
            stack.close(); // never leave services running behind a failed start
            throw e;
        }
        String ready = String.format("ready after %.1fs", (System.nanoTime() - t0) / 1e9);
        out.println("edge        " + stack.edgeUrl + " " + ready + ", " + jarName(stack.edge));
        out.println("aggregator  " + ready + ", " + jarName(stack.aggregator));
        out.println("sink        " + ready + ", " + jarName(stack.sink));
        return stack;
    }

    private static String jarName(ChildJvm service) {
        String jar = service.launch().get(service.launch().size() - 1);
        return "java -jar " + jar.substring(jar.lastIndexOf('/') + 1);
    }

    void awaitEdgeReady(Duration timeout) {
        ChildJvm.awaitHttp(edgeUrl.resolve("/health/ready"), status -> status == 200, timeout, edge, all);
    }

    /** The aggregator and the sink have printed their READY lines (this run's, not an earlier one's). */
    void awaitConsumersReady(Duration timeout) {
        aggregator.awaitPrinted(AGGREGATOR_READY, timeout, all);
        sink.awaitPrinted(SINK_READY, timeout, all);
    }

    Topics topics() {
        return topics;
    }

    String bootstrapServers() {
        return engines.kafka().bootstrapServers();
    }

    /** Client properties of the broker's admin (bootstrap servers and login). */
    Map<String, Object> kafka() {
        return engines.kafka().clientProperties();
    }

    /** {@link #kafka()} with a client's own settings added. */
    Map<String, Object> kafka(Map<String, ?> more) {
        return engines.kafka().clientProperties(more);
    }

    URI edgeUrl() {
        return edgeUrl;
    }

    /** Every edge's public URL, the first edge's first. */
    synchronized List<URI> edgeUrls() {
        return List.copyOf(edgeUrls);
    }

    EdgeAdmin edgeAdmin() {
        return edgeAdmin;
    }

    /** The operators' dashboard on the edge's admin listener, the admin token in the fragment (ADR 0082). */
    String dashboardUrl() {
        return edgeAdmin.baseUrl() + "/admin/dashboard#token=" + edgeAdmin.token();
    }

    String jdbcUrl() {
        return jdbcUrl;
    }

    /** The edge's spool directory (the load program charts its bytes). */
    Path spoolDir() {
        return spoolDir;
    }

    /** Where the services write their logs (one file per service). */
    Path logsDir() {
        return edge.log().getParent();
    }

    /** The aggregator's Kafka Streams application id, which is its consumer group. */
    String aggregatorGroupId() {
        return aggregatorGroupId;
    }

    String sinkGroupId() {
        return sinkGroupId;
    }

    /** The Postgres login of each service that has one (edge, sink), by jar name. */
    Map<String, String> databaseUsers() {
        return databaseUsers;
    }

    String dbUser() {
        return engines.postgres().user();
    }

    String dbPassword() {
        return engines.postgres().password();
    }


    void printHowToUse(PrintStream out, DemoData.Seeded demo) {
        DemoTraffic.Caller first = demo.callers().get(0);
        out.println();
        out.println("Everything is still running:");
        out.println("  edge (OpenAI base URL)  " + edgeUrl + "/v1");
        out.println("  admin API and /metrics  " + edgeAdmin.baseUrl() + " (token " + edgeAdmin.token() + ")");
        out.println("  dashboard (operators)   " + dashboardUrl());
        out.println("                          (the token rides in the #fragment, which the browser never sends and the page"
                + " removes; or open it without and paste the token)");
        out.println("  dashboard (a user)      " + edgeUrl + "/dashboard#key=" + first.apiKey());
        if (notifier != null) {
            out.println("  webhooks admin API      " + notifierAdmin.baseUrl() + "/admin/webhooks (token " + notifierAdmin.token() + ")");
        }
        out.println("  fake OpenAI upstream    " + upstream.baseUrl());
        out.println("  kafka bootstrap         " + engines.kafka().bootstrapServers());
        out.println("  redis                   " + redisWhere(engines));
        out.println("  postgres (JDBC)         " + Redact.url(jdbcUrl) + "  user " + dbUser());
        out.println("  service logs            " + edge.log().getParent().toAbsolutePath());
        out.println();
        out.println("Call it like OpenAI (user " + first.userId() + "):");
        out.println("  curl " + edgeUrl + "/v1/chat/completions -H 'Authorization: Bearer " + first.apiKey() + "' \\");
        out.println("    -H 'Content-Type: application/json' \\");
        out.println("    -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'");
        out.println("  # Python: OpenAI(base_url=\"" + edgeUrl + "/v1\", api_key=\"" + first.apiKey() + "\")");
        out.println();
        out.println("Read the topics as the analysts' read-only principal (Avro single-object encoded; see usage-events/README.md):");
        out.println("  (set -a; . " + analystEnv.toAbsolutePath() + "; java -cp \"local-stack/target/classes:$(cat local-stack/target/runtime-classpath.txt)\" \\");
        out.println("    dev.tokenmeter.local.TailTopic " + topics.usageEvents().name() + ")");
        out.println("Query the tables (any Postgres client):");
        out.println("  select * from monthly_statement where user_id = '" + first.userId() + "';");
        out.println("  select * from reconciliation;");
    }

    /**
     * SIGTERM to each service, SIGKILL only after its grace period: as in docker-compose, the edge may wait up to 30 s
     * for calls under way, 5 s for their settles and 15 s for its event flush. Services with nothing under way stop
     * at once.
     */
    @Override
    public void close() {
        for (ChildJvm p : all) {
            p.stop(edges.contains(p) ? EDGE_GRACE : GRACE);
        }
        // Every run starts new engines, so a spool or state store of this one would only be stale in the next.
        runDirs.forEach(WorkDirs::deleteQuietly);
    }

    private static void createDirectories(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir, e);
        }
    }

    /** {@code KEY=value} lines in a file only its owner may read (it holds a password). */
    private static Path writeOwnerOnly(Path file, Map<String, String> env) {
        try {
            Files.createDirectories(file.getParent());
            Files.deleteIfExists(file);
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            StringBuilder lines = new StringBuilder();
            env.forEach((k, v) -> lines.append(k).append("='").append(v.replace("'", "'\\''")).append("'\n"));
            Files.writeString(file, lines);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    static int freePort() {
        try (ServerSocket socket = new ServerSocket(0)) {
            socket.setReuseAddress(true);
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void pause(Duration d) {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
