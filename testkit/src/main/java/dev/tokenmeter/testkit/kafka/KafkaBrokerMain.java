package dev.tokenmeter.testkit.kafka;

import kafka.tools.StorageTool;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Entry point of the forked broker JVM started by {@link EmbeddedKafkaEngine}: formats the log directory
 * (once) and runs {@code kafka.Kafka} in-process, and exits when the JVM that started it is gone.
 *
 * <p>Why a wrapper instead of launching {@code kafka.Kafka} directly: a test JVM killed with SIGKILL (or an
 * IDE's stop button) runs no shutdown hook, so a bare broker would keep running and keep its ports. Watching
 * the parent with {@link ProcessHandle#onExit()} is portable (no shell, no {@code prctl}). Formatting
 * in-process with {@link StorageTool#execute} also saves a second JVM start per broker (about 2 s).
 *
 * <p>Usage: {@code KafkaBrokerMain <parentPid> <server.properties> <clusterId>}
 */
public final class KafkaBrokerMain {

    /** After the parent is gone, a graceful shutdown gets this long before the JVM is halted. */
    private static final Duration ORPHAN_SHUTDOWN_GRACE = Duration.ofSeconds(15);

    private KafkaBrokerMain() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: KafkaBrokerMain <parentPid> <server.properties> <clusterId>");
            System.exit(2);
        }
        long parentPid = Long.parseLong(args[0]);
        String serverProperties = args[1];
        String clusterId = args[2];

        watchParent(parentPid);

        // --ignore-formatted: a restart (stop() then start()) reuses the formatted log dir and keeps its data.
        // controller.quorum.voters is static, so no --standalone / --initial-controllers is needed.
        // The super user's SCRAM credential goes into the metadata log at format time: a secured broker has no
        // other way in for its first client.
        List<String> format = new ArrayList<>(List.of(
                "format", "--cluster-id", clusterId, "--config", serverProperties, "--ignore-formatted"));
        String adminScram = System.getenv(EmbeddedKafkaEngine.ADMIN_SCRAM_ENV);
        if (adminScram != null && !adminScram.isEmpty()) {
            format.add("--add-scram");
            format.add(adminScram);
        }
        int formatted = StorageTool.execute(format.toArray(String[]::new), System.out);
        if (formatted != 0) {
            System.err.println("kafka-storage format failed with exit code " + formatted);
            System.exit(formatted);
        }
        kafka.Kafka.main(new String[] {serverProperties});
    }

    private static void watchParent(long parentPid) {
        Optional<ProcessHandle> parent = ProcessHandle.of(parentPid);
        if (parent.isEmpty()) {
            System.err.println("parent process " + parentPid + " is gone; not starting the broker");
            System.exit(3);
        }
        parent.get().onExit().thenRun(() -> {
            System.err.println("parent process " + parentPid + " is gone; shutting the broker down");
            Thread halter = new Thread(() -> {
                try {
                    Thread.sleep(ORPHAN_SHUTDOWN_GRACE.toMillis());
                } catch (InterruptedException ignored) {
                    // halt anyway
                }
                Runtime.getRuntime().halt(4);
            }, "orphan-halter");
            halter.setDaemon(true);
            halter.start();
            System.exit(0);
        });
    }
}
