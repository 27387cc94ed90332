package dev.tokenmeter.edge;

import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedStackTrace;
import jdk.jfr.consumer.RecordedThread;
import jdk.jfr.consumer.RecordingFile;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * Cuts a JFR recording of the edge (made during {@link EdgeBenchmark} with {@code BENCH_EDGE_JVM_OPTS}) to one phase,
 * by the start and length {@link EdgeBenchmark} prints on the phase's line, and says where the edge's time went in it —
 * not a test. Run: {@code bin/benchmark edge-service dev.tokenmeter.edge.EdgeBenchmarkProfile edge.jfr <start instant>
 * <seconds> <completed calls>}.
 *
 * <p>Prints, from {@code jdk.ExecutionSample} (threads running Java code; time in the kernel and in native waits is not
 * sampled, the phase line's "kernel" CPU is): the samples by thread group and by {@link #PARTS part} — the first part
 * found walking a sample's stack from its top frame, so a socket write under Jetty counts as socket I/O and a Jackson
 * call from the proxy as JSON — and from {@code jdk.ThreadPark} (record it with {@code jdk.ThreadPark#threshold=0ms}):
 * parks per call by thread group and by the frame that parked. The part "hand-off" is the code that moves a call from
 * one thread to another: parking and unparking, the virtual threads' scheduler, futures completing, event loops' wake-ups.
 */
public final class EdgeBenchmarkProfile {

    /** Parts of the edge's work, by the classes (and methods) of a frame; the first that matches names the part. */
    static final Map<String, Pattern> PARTS = parts();

    private static Map<String, Pattern> parts() {
        Map<String, Pattern> p = new LinkedHashMap<>();
        p.put("hand-off (park, unpark, schedulers, futures, wake-ups)", Pattern.compile(
                "^(java\\.util\\.concurrent\\.locks\\.(LockSupport|AbstractQueuedSynchronizer.*)\\.|jdk\\.internal\\.misc\\.Unsafe\\.(park|unpark)"
                        + "|java\\.lang\\.VirtualThread\\.|jdk\\.internal\\.vm\\.Continuation\\.|java\\.util\\.concurrent\\.ForkJoin(Pool|WorkerThread|Task)"
                        + "|java\\.util\\.concurrent\\.CompletableFuture.*\\.(postComplete|complete|completeValue|tryFire|signal|waitingGet|timedGet|get|block|isReleasable)"
                        + "|java\\.util\\.concurrent\\.LinkedTransferQueue|java\\.util\\.concurrent\\.SynchronousQueue"
                        + "|java\\.lang\\.Object\\.(wait|notify)|io\\.netty\\.util\\.concurrent\\.SingleThreadEventExecutor\\.(execute|wakeup|offerTask)"
                        + "|io\\.netty\\.channel\\.epoll\\.EpollEventLoop\\.wakeup|io\\.netty\\.channel\\.(epoll\\.)?Native\\.eventFdWrite"
                        + "|org\\.eclipse\\.jetty\\.io\\.ManagedSelector\\.(submit|wakeup)|org\\.eclipse\\.jetty\\.util\\.thread\\.(QueuedThreadPool|ReservedThreadExecutor)"
                        + "|sun\\.nio\\.ch\\.EPollSelectorImpl\\.wakeup|sun\\.nio\\.ch\\.Poller|java\\.util\\.concurrent\\.ThreadPerTaskExecutor)"));
        p.put("socket and file system calls", Pattern.compile(
                "^(sun\\.nio\\.ch\\.(SocketDispatcher|IOUtil|FileDispatcherImpl|EPoll|NioSocketImpl|SocketChannelImpl\\.(read|write))"
                        + "|io\\.netty\\.channel\\.(epoll\\.)?(Native|LinuxSocket|FileDescriptor)|io\\.netty\\.channel\\.unix\\.)"));
        p.put("JSON and token counting", Pattern.compile("^(com\\.fasterxml\\.jackson|com\\.knuddels\\.jtokkit)"));
        p.put("Kafka producer (Avro, LZ4, sender)", Pattern.compile("^(org\\.apache\\.kafka|net\\.jpountz|org\\.apache\\.avro|dev\\.tokenmeter\\.edge\\.publish|dev\\.tokenmeter\\.events)"));
        p.put("Lettuce and Netty (Redis client)", Pattern.compile("^(io\\.lettuce|io\\.netty)"));
        p.put("Jetty client (upstream)", Pattern.compile("^org\\.eclipse\\.jetty\\.client"));
        p.put("Jetty server, HTTP, I/O", Pattern.compile("^org\\.eclipse\\.jetty"));
        p.put("edge code (auth, quota, metering, proxy)", Pattern.compile("^dev\\.tokenmeter"));
        p.put("metrics", Pattern.compile("^(io\\.micrometer|io\\.prometheus)"));
        p.put("JFR itself", Pattern.compile("^jdk\\.jfr"));
        p.put("JDK (collections, strings, crypto, …)", Pattern.compile("^(java|javax|jdk|sun|com\\.sun)\\."));
        return p;
    }

    private EdgeBenchmarkProfile() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 4) {
            throw new IllegalArgumentException("arguments: <recording.jfr> <phase start, an instant> <seconds> <completed calls>");
        }
        Path file = Path.of(args[0]);
        Instant from = Instant.parse(args[1]);
        Instant to = from.plus(Duration.ofMillis(Math.round(Double.parseDouble(args[2]) * 1000)));
        long calls = Long.parseLong(args[3]);

        Map<String, Long> samplesByThread = new TreeMap<>();
        Map<String, Long> samplesByPart = new LinkedHashMap<>();
        PARTS.keySet().forEach(k -> samplesByPart.put(k, 0L));
        samplesByPart.put("other", 0L);
        Map<String, Long> handOffFrames = new TreeMap<>();
        Map<String, Long> parksByThread = new TreeMap<>();
        Map<String, Long> parksBySite = new TreeMap<>();
        long samples = 0;
        long parks = 0;
        try (RecordingFile recording = new RecordingFile(file)) {
            while (recording.hasMoreEvents()) {
                RecordedEvent e = recording.readEvent();
                if (e.getStartTime().isBefore(from) || e.getStartTime().isAfter(to)) {
                    continue;
                }
                String type = e.getEventType().getName();
                if (type.equals("jdk.ExecutionSample")) {
                    samples++;
                    samplesByThread.merge(threadGroup(e.getThread("sampledThread")), 1L, Long::sum);
                    Map.Entry<String, String> part = part(e.getStackTrace());
                    samplesByPart.merge(part.getKey(), 1L, Long::sum);
                    if (part.getKey().startsWith("hand-off")) {
                        handOffFrames.merge(part.getValue(), 1L, Long::sum);
                    }
                } else if (type.equals("jdk.ThreadPark")) {
                    parks++;
                    parksByThread.merge(threadGroup(e.getThread()), 1L, Long::sum);
                    parksBySite.merge(parkSite(e.getStackTrace()), 1L, Long::sum);
                }
            }
        }
        System.out.printf("%s, %s + %s s, %d calls: %d execution samples, %d parks%n", file, from, args[2], calls, samples, parks);
        print("execution samples by thread group", samplesByThread, samples, calls, 0.01);
        print("execution samples by part (the first part from a stack's top frame)", samplesByPart, samples, calls, 0);
        print("hand-off samples by the frame that matched", handOffFrames, samples, calls, 0.005);
        print("parks (jdk.ThreadPark) by thread group, per call", parksByThread, parks, calls, 0.01);
        print("parks by the first frame outside the JDK's locks and futures, per call", parksBySite, parks, calls, 0.01);
    }

    private static void print(String title, Map<String, Long> counts, long all, long calls, double minShare) {
        System.out.println(title + ":");
        counts.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue(), a.getValue()))
                .filter(e -> all > 0 && e.getValue() / (double) all >= minShare)
                .forEach(e -> System.out.printf("  %6d  %5.1f %%  %7.3f per call  %s%n", e.getValue(), 100.0 * e.getValue() / all,
                        e.getValue() / (double) Math.max(1, calls), e.getKey()));
    }

    /** A thread's group: "virtual" for a virtual thread, else its name with digits as {@code #}. */
    static String threadGroup(RecordedThread t) {
        if (t == null) {
            return "?";
        }
        if (t.isVirtual()) {
            return "virtual";
        }
        String name = t.getJavaName() != null ? t.getJavaName() : t.getOSName();
        return ContextSwitches.threadGroup(name == null ? "?" : name);
    }

    /** The part of a stack and the frame that matched it. */
    static Map.Entry<String, String> part(RecordedStackTrace stack) {
        if (stack != null) {
            for (RecordedFrame f : stack.getFrames()) {
                String frame = frame(f);
                for (Map.Entry<String, Pattern> p : PARTS.entrySet()) {
                    if (p.getValue().matcher(frame).find()) {
                        return Map.entry(p.getKey(), frame);
                    }
                }
            }
        }
        return Map.entry("other", "?");
    }

    private static final Pattern PARK_MACHINERY = Pattern.compile(
            "^(java\\.util\\.concurrent\\.(locks|CompletableFuture|ForkJoin|LinkedTransferQueue|SynchronousQueue|ArrayBlockingQueue|LinkedBlockingQueue|FutureTask)"
                    + "|java\\.lang\\.(VirtualThread|Thread\\.|Object\\.wait)|jdk\\.internal\\.(misc|vm)\\.|sun\\.nio\\.ch\\.(Poller|NioSocketImpl\\.park))");

    /** Where a park came from: the first frame, from the top, outside the JDK's parking machinery. */
    static String parkSite(RecordedStackTrace stack) {
        if (stack != null) {
            List<RecordedFrame> frames = stack.getFrames();
            for (RecordedFrame f : frames) {
                String frame = frame(f);
                if (!PARK_MACHINERY.matcher(frame).find()) {
                    return frame;
                }
            }
        }
        return "?";
    }

    private static String frame(RecordedFrame f) {
        return f.getMethod().getType().getName() + "." + f.getMethod().getName();
    }
}
