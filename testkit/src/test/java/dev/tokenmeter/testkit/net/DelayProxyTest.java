package dev.tokenmeter.testkit.net;

import dev.tokenmeter.testkit.net.DelayProxy.Flow;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/** The delaying proxy of issue 20 ("slow, not dead") against tiny servers on real loopback sockets. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class DelayProxyTest {

    private static final Duration MARGIN = Duration.ofMillis(400);
    private static final Executor VIRTUAL = task -> Thread.ofVirtual().start(task);

    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (AutoCloseable closeable : toClose.reversed()) {
            closeable.close();
        }
    }

    @Test
    void aRoundTripTakesTheLatencyOfBothDirections() throws IOException {
        DelayProxy proxy = proxyTo(echo());
        proxy.delay(Duration.ofMillis(100), Duration.ZERO);
        try (Socket socket = connect(proxy)) {
            for (int i = 0; i < 3; i++) {
                assertThat(roundTrip(socket)).as("round trip %d", i)
                        .isBetween(Duration.ofMillis(200), Duration.ofMillis(200).plus(MARGIN));
            }
        }
    }

    @Test
    void aChangeOfDelayAppliesToDataSentAfterIt() throws IOException {
        DelayProxy proxy = proxyTo(echo());
        try (Socket socket = connect(proxy)) {
            proxy.delay(Duration.ofMillis(150), Duration.ZERO);
            assertThat(roundTrip(socket)).as("150 ms each way").isGreaterThanOrEqualTo(Duration.ofMillis(300));

            proxy.delay(Duration.ZERO, Duration.ZERO);
            assertThat(fastestOfThree(socket)).as("delay removed").isLessThan(Duration.ofMillis(100));

            proxy.delay(Flow.TO_CLIENT, Duration.ofMillis(120), Duration.ZERO);
            assertThat(roundTrip(socket)).as("120 ms on the way back only")
                    .isBetween(Duration.ofMillis(120), Duration.ofMillis(120).plus(MARGIN));

            proxy.delay(Flow.TO_CLIENT, Duration.ZERO, Duration.ZERO);
            assertThat(fastestOfThree(socket)).as("removed again").isLessThan(Duration.ofMillis(100));
        }
    }

    @Test
    void jitterStaysWithinItsBounds() throws IOException {
        DelayProxy proxy = proxyTo(echo());
        proxy.delay(Flow.TO_TARGET, Duration.ofMillis(20), Duration.ofMillis(40));
        List<Duration> trips = new ArrayList<>();
        try (Socket socket = connect(proxy)) {
            for (int i = 0; i < 20; i++) {
                trips.add(roundTrip(socket));
            }
        }
        assertThat(trips).as("every trip waits 20 ms plus at most 40 ms of jitter")
                .allSatisfy(trip -> assertThat(trip).isBetween(Duration.ofMillis(20), Duration.ofMillis(60).plus(MARGIN)));
        Duration spread = trips.stream().max(Duration::compareTo).orElseThrow()
                .minus(trips.stream().min(Duration::compareTo).orElseThrow());
        // 20 draws of uniform [0, 40] ms all inside 10 ms has a probability below 1e-10.
        assertThat(spread).as("the jitter varies from chunk to chunk: %s", trips).isGreaterThan(Duration.ofMillis(10));
    }

    /** A pipe with delay, not a stop-and-wait: byte order kept, throughput not one chunk per delay. */
    @Test
    void aLargeTransferWithJitterArrivesInOrderWithoutABandwidthCap() throws Exception {
        int size = 4 << 20;
        int chunkBytes = 16 * 1024;
        Duration latency = Duration.ofMillis(20);
        DelayProxy proxy = toClose(DelayProxy.builder("127.0.0.1", echo().port()).chunkBytes(chunkBytes).start());
        proxy.delay(latency, Duration.ofMillis(10));
        byte[] sent = new byte[size];
        new Random(20).nextBytes(sent);

        long start = System.nanoTime();
        byte[] received;
        try (Socket socket = connect(proxy)) {
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    OutputStream out = socket.getOutputStream();
                    for (int offset = 0; offset < size; offset += 4096) {
                        out.write(sent, offset, 4096);
                    }
                    socket.shutdownOutput();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }, VIRTUAL);
            received = socket.getInputStream().readAllBytes();
            writer.get(10, TimeUnit.SECONDS);
        }
        Duration elapsed = Duration.ofNanos(System.nanoTime() - start);

        assertThat(received.length).as("bytes echoed").isEqualTo(size);
        assertThat(received).as("the same bytes in the same order").isEqualTo(sent);
        // Each direction has at least size / chunkBytes = 256 chunks; one delay per chunk would take 256 × 20 ms.
        Duration stopAndWait = latency.multipliedBy(size / chunkBytes);
        assertThat(elapsed).as("4 MiB through 20–30 ms each way; stop-and-wait would need %s", stopAndWait)
                .isLessThan(stopAndWait.dividedBy(3));
    }

    @Test
    void halfClosePropagatesBothWays() throws IOException {
        // Reads until the client's EOF, then answers with the count and closes.
        LoopbackServer counter = toClose(LoopbackServer.start(socket -> {
            long n = socket.getInputStream().readAllBytes().length;
            socket.getOutputStream().write(("read " + n).getBytes(StandardCharsets.US_ASCII));
        }));
        DelayProxy proxy = proxyTo(counter);
        proxy.delay(Duration.ofMillis(30), Duration.ofMillis(10));
        try (Socket socket = connect(proxy)) {
            socket.getOutputStream().write(new byte[1000]);
            socket.shutdownOutput();
            String reply = new String(socket.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            assertThat(reply).as("the server saw EOF after all 1000 bytes; the client saw the reply, then EOF")
                    .isEqualTo("read 1000");
        }
        await("the finished connection is gone").atMost(Duration.ofSeconds(5))
                .until(() -> proxy.openConnections() == 0 && proxy.liveThreads() == 1);
    }

    @Test
    void aResetOnOneSideClosesThePair() throws IOException {
        LoopbackServer resetter = toClose(LoopbackServer.start(socket -> {
            socket.getInputStream().read();
            socket.setSoLinger(true, 0); // close() now sends RST
        }));
        DelayProxy proxy = proxyTo(resetter);
        try (Socket socket = connect(proxy)) {
            socket.getOutputStream().write(1);
            assertClosedByPeer(socket);
        }
        await("the reset connection is gone").atMost(Duration.ofSeconds(5))
                .until(() -> proxy.openConnections() == 0 && proxy.liveThreads() == 1);
    }

    @Test
    void aTargetThatIsDownClosesTheClientsConnection() throws IOException {
        int closedPort;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = probe.getLocalPort();
        }
        DelayProxy proxy = toClose(DelayProxy.start("127.0.0.1", closedPort));
        try (Socket socket = connect(proxy)) {
            assertClosedByPeer(socket);
        }
        await("the failed connect leaves only the acceptor").atMost(Duration.ofSeconds(5))
                .until(() -> proxy.openConnections() == 0 && proxy.liveThreads() == 1);
    }

    @Test
    void closeClosesEveryOpenConnectionAndEndsEveryThread() throws IOException {
        LoopbackServer echo = echo();
        DelayProxy proxy = proxyTo(echo);
        proxy.delay(Duration.ofMillis(10), Duration.ZERO);
        List<Socket> sockets = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            Socket socket = connect(proxy);
            sockets.add(socket);
            roundTrip(socket);
        }
        assertThat(proxy.openConnections()).isEqualTo(5);
        assertThat(proxy.liveThreads()).as("an acceptor and four pumps per connection").isEqualTo(1 + 5 * 4);

        proxy.close();

        assertThat(proxy.liveThreads()).as("threads left after close()").isZero();
        assertThat(proxy.openConnections()).isZero();
        for (Socket socket : sockets) {
            try (socket) {
                assertClosedByPeer(socket);
            }
        }
        await("the target's sides are closed").atMost(Duration.ofSeconds(5)).until(() -> echo.openConnections() == 0);
        assertThatThrownBy(() -> new Socket("127.0.0.1", proxy.port()).close()).as("no longer accepting")
                .isInstanceOf(ConnectException.class);
    }

    @Test
    void manyConcurrentConnectionsLeaveNoThreadsOrConnections() throws Exception {
        DelayProxy proxy = proxyTo(echo());
        proxy.delay(Duration.ofMillis(20), Duration.ofMillis(20));
        List<CompletableFuture<Duration>> clients = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            clients.add(CompletableFuture.supplyAsync(() -> {
                try (Socket socket = connect(proxy)) {
                    roundTrip(socket);
                    return roundTrip(socket);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }, VIRTUAL));
        }
        for (CompletableFuture<Duration> client : clients) {
            assertThat(client.get(10, TimeUnit.SECONDS)).isGreaterThanOrEqualTo(Duration.ofMillis(40));
        }
        await("50 closed connections leave only the acceptor").atMost(Duration.ofSeconds(5))
                .until(() -> proxy.openConnections() == 0 && proxy.liveThreads() == 1);
    }

    @Test
    void aSlowSinkIsHeldBackByTheBufferLimit() throws Exception {
        int limit = 64 * 1024;
        int size = 64 << 20; // more than loopback's socket buffers on both sides can hold
        CompletableFuture<Void> startReading = new CompletableFuture<>();
        AtomicLong readByServer = new AtomicLong();
        LoopbackServer stalled = toClose(LoopbackServer.start(socket -> {
            startReading.join();
            InputStream in = socket.getInputStream();
            byte[] buffer = new byte[64 * 1024];
            for (int n; (n = in.read(buffer)) >= 0; ) {
                readByServer.addAndGet(n);
            }
        }));
        DelayProxy proxy = toClose(DelayProxy.builder("127.0.0.1", stalled.port()).bufferLimitBytes(limit).start());
        AtomicLong written = new AtomicLong();
        try (Socket socket = connect(proxy)) {
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    OutputStream out = socket.getOutputStream();
                    byte[] block = new byte[64 * 1024];
                    for (int i = 0; i < size / block.length; i++) {
                        out.write(block);
                        written.addAndGet(block.length);
                    }
                    socket.shutdownOutput();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }, VIRTUAL);

            await("the proxy's queue fills to its limit").atMost(Duration.ofSeconds(10))
                    .until(() -> proxy.bufferedBytes() >= limit);
            long stuckAt = written.get();
            long most = 0;
            for (int i = 0; i < 20; i++) {
                most = Math.max(most, proxy.bufferedBytes());
                Thread.sleep(10); // sampling the queue over 200 ms, not waiting for an outcome
            }
            assertThat(most).as("bytes held while the sink reads nothing").isLessThanOrEqualTo(limit);
            assertThat(writer).as("the sender is blocked by back-pressure").isNotDone();
            assertThat(written.get()).as("the sender got no further than socket buffers allow").isLessThan(size);

            startReading.complete(null);
            writer.get(15, TimeUnit.SECONDS);
            await("every byte arrives once the sink reads").atMost(Duration.ofSeconds(15))
                    .until(() -> readByServer.get() == size);
            assertThat(stuckAt).isLessThan(size);
        }
    }

    @Test
    void aBlackholeHoldsBytesUntilItIsLifted() throws IOException {
        DelayProxy proxy = proxyTo(echo());
        try (Socket socket = connect(proxy)) {
            socket.setSoTimeout(300);
            proxy.blackhole(true);
            socket.getOutputStream().write(7);
            assertThatThrownBy(() -> socket.getInputStream().read()).as("nothing comes back through a black hole")
                    .isInstanceOf(SocketTimeoutException.class);
            proxy.blackhole(false);
            socket.setSoTimeout(5_000);
            assertThat(socket.getInputStream().read()).as("the held byte, once lifted").isEqualTo(7);
        }
    }

    private LoopbackServer echo() {
        return toClose(LoopbackServer.echo());
    }

    private DelayProxy proxyTo(LoopbackServer server) {
        return toClose(DelayProxy.start("127.0.0.1", server.port()));
    }

    private <T extends AutoCloseable> T toClose(T closeable) {
        toClose.add(closeable);
        return closeable;
    }

    private static Socket connect(DelayProxy proxy) throws IOException {
        Socket socket = new Socket(proxy.host(), proxy.port());
        socket.setTcpNoDelay(true);
        socket.setSoTimeout(10_000);
        return socket;
    }

    /** One byte there and back. */
    private static Duration roundTrip(Socket socket) throws IOException {
        long start = System.nanoTime();
        socket.getOutputStream().write(42);
        int echoed = socket.getInputStream().read();
        Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
        assertThat(echoed).as("the echoed byte").isEqualTo(42);
        return elapsed;
    }

    /** The fastest of three round trips, so one stall of a busy box does not pass for a delay. */
    private static Duration fastestOfThree(Socket socket) throws IOException {
        Duration fastest = roundTrip(socket);
        for (int i = 0; i < 2; i++) {
            Duration trip = roundTrip(socket);
            fastest = trip.compareTo(fastest) < 0 ? trip : fastest;
        }
        return fastest;
    }

    /**
     * Reads to the end within the socket's timeout: a closed peer shows as EOF or as a reset; a peer still open
     * fails the test with a SocketTimeoutException (not a SocketException).
     */
    private static void assertClosedByPeer(Socket socket) throws IOException {
        socket.setSoTimeout(5_000);
        try {
            socket.getInputStream().transferTo(OutputStream.nullOutputStream());
        } catch (SocketException reset) {
            assertThat(reset).hasMessageContaining("reset");
        }
    }
}
