package dev.tokenmeter.testkit.net;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A TCP proxy on a free loopback port that forwards to one target (Redis, Kafka, Postgres, the fake upstream) and
 * adds latency and jitter that can be changed while connections are open: a slow network, not a dead one.
 *
 * <p>Each direction of each connection is a pipe with delay, not a stop-and-wait: a chunk read at {@code arrival}
 * is written at {@code max(previous chunk's release, arrival + latency + uniform[0, jitter])}. Bytes keep their order
 * and a pipelining client (Lettuce, Kafka) sees the latency without a bandwidth cap of one chunk per delay. A change
 * of delay applies to chunks read after it; chunks already queued keep their release time.
 *
 * <p>Each direction buffers at most {@link Builder#bufferLimitBytes} bytes: when its queue is full the proxy stops
 * reading that side, so TCP back-pressure reaches the sender and a slow sink cannot make the proxy hold unbounded
 * memory. EOF on one side becomes {@code shutdownOutput} on the other once the bytes before it are written; a reset
 * or error on either side closes both sockets. {@link #close()} stops accepting, closes every open connection and
 * waits for its threads (virtual, named {@code delay-proxy-<port>-*}) to end.
 *
 * <p>Opening a connection is not delayed: the proxy connects to the target as soon as a client connects.
 */
public final class DelayProxy implements AutoCloseable {

    /** The direction of a flow of bytes. */
    public enum Flow {
        /** From the client that connected to the proxy to the target. */
        TO_TARGET,
        /** From the target back to the client. */
        TO_CLIENT
    }

    private record Delay(long latencyNanos, long jitterNanos) {
        static final Delay NONE = new Delay(0, 0);

        long draw() {
            return jitterNanos == 0 ? latencyNanos : latencyNanos + ThreadLocalRandom.current().nextLong(jitterNanos + 1);
        }
    }

    private static final Duration JOIN_TIMEOUT = Duration.ofSeconds(5);

    private final InetSocketAddress target;
    private final int bufferLimitBytes;
    private final int chunkBytes;
    private final Duration connectTimeout;
    private final ServerSocket server;
    private final ThreadFactory threads;
    private final Set<Thread> liveThreads = ConcurrentHashMap.newKeySet();
    private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
    private final Object lifecycle = new Object();
    private volatile Delay toTarget = Delay.NONE;
    private volatile Delay toClient = Delay.NONE;
    private volatile boolean blackhole;
    private volatile boolean closed;

    private DelayProxy(Builder builder) throws IOException {
        this.target = new InetSocketAddress(builder.host, builder.port);
        this.bufferLimitBytes = builder.bufferLimitBytes;
        this.chunkBytes = Math.min(builder.chunkBytes, builder.bufferLimitBytes);
        this.connectTimeout = builder.connectTimeout;
        this.server = new ServerSocket(0, 128, InetAddress.getLoopbackAddress());
        this.threads = Thread.ofVirtual().name("delay-proxy-" + server.getLocalPort() + "-", 0).factory();
        startThread(this::acceptLoop);
    }

    /** A proxy to {@code host:port} with the default settings and no delay. */
    public static DelayProxy start(String host, int port) {
        return builder(host, port).start();
    }

    public static Builder builder(String host, int port) {
        return new Builder(host, port);
    }

    /** The port the proxy listens on, on the loopback address; point the client here instead of the target. */
    public int port() {
        return server.getLocalPort();
    }

    /** The loopback address the proxy listens on. */
    public String host() {
        return server.getInetAddress().getHostAddress();
    }

    /** Sets the delay of both directions: each chunk waits {@code latency} plus a uniform random {@code [0, jitter]}. */
    public DelayProxy delay(Duration latency, Duration jitter) {
        Delay delay = delayOf(latency, jitter);
        toTarget = delay;
        toClient = delay;
        return this;
    }

    /** Sets the delay of one direction only. {@code delay(flow, ZERO, ZERO)} removes it. */
    public DelayProxy delay(Flow flow, Duration latency, Duration jitter) {
        Delay delay = delayOf(latency, jitter);
        switch (flow) {
            case TO_TARGET -> toTarget = delay;
            case TO_CLIENT -> toClient = delay;
        }
        return this;
    }

    /**
     * While on, the proxy forwards nothing in either direction, as a network that drops every packet: it keeps
     * accepting connections and reading until each direction's buffer is full, then the senders block. Turned off,
     * the held bytes flow again in order (as TCP retransmission would deliver them).
     */
    public DelayProxy blackhole(boolean on) {
        blackhole = on;
        if (!on) {
            connections.forEach(Connection::wakeUp);
        }
        return this;
    }

    /** Connections open through the proxy now. */
    public int openConnections() {
        return connections.size();
    }

    /** Threads of this proxy that have not ended: the acceptor (until {@link #close()}) and four per connection. */
    public int liveThreads() {
        return liveThreads.size();
    }

    /** Bytes read and not yet written, over every open connection and direction. */
    public long bufferedBytes() {
        return connections.stream().mapToLong(Connection::bufferedBytes).sum();
    }

    /** The most bytes one direction of one connection may hold (what {@link Builder#bufferLimitBytes} set). */
    public int bufferLimitBytes() {
        return bufferLimitBytes;
    }

    /** Stops accepting, closes every open connection (both sockets) and waits for the proxy's threads to end. */
    @Override
    public void close() {
        List<Connection> open;
        synchronized (lifecycle) {
            if (closed) {
                return;
            }
            closed = true;
            open = List.copyOf(connections);
        }
        closeQuietly(server);
        open.forEach(Connection::close);
        // Looping until none is left: a connection that was being opened during close() may start its pumps
        // after this began (they see the connection closed and end at once).
        long deadline = System.nanoTime() + JOIN_TIMEOUT.toNanos();
        while (!liveThreads.isEmpty()) {
            for (Thread thread : List.copyOf(liveThreads)) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IllegalStateException("delay proxy on port " + port() + ": thread " + thread.getName()
                            + " still running " + JOIN_TIMEOUT.toSeconds() + " s after close()");
                }
                try {
                    thread.join(Duration.ofNanos(Math.min(left, Duration.ofMillis(100).toNanos())));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    @Override
    public String toString() {
        return "DelayProxy[" + host() + ":" + port() + " -> " + target.getHostString() + ":" + target.getPort() + "]";
    }

    private static Delay delayOf(Duration latency, Duration jitter) {
        Objects.requireNonNull(latency, "latency");
        Objects.requireNonNull(jitter, "jitter");
        if (latency.isNegative() || jitter.isNegative()) {
            throw new IllegalArgumentException("latency and jitter must not be negative: " + latency + ", " + jitter);
        }
        return latency.isZero() && jitter.isZero() ? Delay.NONE : new Delay(latency.toNanos(), jitter.toNanos());
    }

    private void startThread(Runnable body) {
        Thread thread = threads.newThread(() -> {
            try {
                body.run();
            } finally {
                liveThreads.remove(Thread.currentThread());
            }
        });
        liveThreads.add(thread);
        thread.start();
    }

    private void acceptLoop() {
        while (!closed) {
            Socket client;
            try {
                client = server.accept();
            } catch (IOException e) {
                if (closed) {
                    return;
                }
                // Out of descriptors or a transient error: back off briefly instead of spinning on accept().
                java.util.concurrent.locks.LockSupport.parkNanos(10_000_000);
                continue;
            }
            // Connecting in a thread of its own, so a slow target does not hold up the next client.
            startThread(() -> connect(client));
        }
    }

    private void connect(Socket client) {
        try {
            client.setTcpNoDelay(true);
            Socket upstream = new Socket();
            try {
                upstream.setTcpNoDelay(true);
                upstream.connect(target, (int) connectTimeout.toMillis());
            } catch (IOException e) {
                closeQuietly(upstream);
                throw e;
            }
            open(new Connection(client, upstream));
        } catch (IOException e) {
            // The target is down or unreachable: the client sees its connection closed, as with a refused port.
            closeQuietly(client);
        }
    }

    private void open(Connection connection) {
        synchronized (lifecycle) {
            if (closed) {
                connection.close();
                return;
            }
            connections.add(connection);
        }
        connection.start();
    }

    private static void closeQuietly(AutoCloseable closeable) {
        try {
            closeable.close();
        } catch (Exception ignored) {
            // closing on the way out; nothing to do about it
        }
    }

    /** A client socket, its socket to the target and the two directions between them. */
    private final class Connection {
        private final Socket client;
        private final Socket upstream;
        private final Pipe toTargetPipe;
        private final Pipe toClientPipe;
        private boolean halfClosedOnce;
        private boolean closedOnce;

        Connection(Socket client, Socket upstream) {
            this.client = client;
            this.upstream = upstream;
            this.toTargetPipe = new Pipe(this, Flow.TO_TARGET, client, upstream);
            this.toClientPipe = new Pipe(this, Flow.TO_CLIENT, upstream, client);
        }

        void start() {
            toTargetPipe.start();
            toClientPipe.start();
        }

        long bufferedBytes() {
            return toTargetPipe.bufferedBytes() + toClientPipe.bufferedBytes();
        }

        void wakeUp() {
            toTargetPipe.wakeUp();
            toClientPipe.wakeUp();
        }

        /** One direction delivered its EOF; when both have, the connection is done. */
        void finished() {
            synchronized (this) {
                if (!halfClosedOnce) {
                    halfClosedOnce = true;
                    return;
                }
            }
            close();
        }

        void close() {
            synchronized (this) {
                if (closedOnce) {
                    return;
                }
                closedOnce = true;
            }
            closeQuietly(client);
            closeQuietly(upstream);
            toTargetPipe.stop();
            toClientPipe.stop();
            connections.remove(this);
        }
    }

    /** A chunk of bytes, or the end of the stream ({@code bytes == null}), and when it may be written. */
    private record Chunk(byte[] bytes, long releaseNanos) {
        int size() {
            return bytes == null ? 0 : bytes.length;
        }
    }

    /** One direction: a reader that queues timed chunks and a writer that releases them in order. */
    private final class Pipe {
        private final Connection connection;
        private final Flow flow;
        private final Socket source;
        private final Socket sink;
        private final ReentrantLock lock = new ReentrantLock();
        private final Condition changed = lock.newCondition();
        private final ArrayDeque<Chunk> queue = new ArrayDeque<>();
        private long queuedBytes;
        private long lastReleaseNanos = Long.MIN_VALUE;
        private boolean stopped;

        Pipe(Connection connection, Flow flow, Socket source, Socket sink) {
            this.connection = connection;
            this.flow = flow;
            this.source = source;
            this.sink = sink;
        }

        void start() {
            startThread(this::readLoop);
            startThread(this::writeLoop);
        }

        long bufferedBytes() {
            lock.lock();
            try {
                return queuedBytes;
            } finally {
                lock.unlock();
            }
        }

        void wakeUp() {
            lock.lock();
            try {
                changed.signalAll();
            } finally {
                lock.unlock();
            }
        }

        /** Ends both threads of this direction: a waiting one returns, a blocked one fails on its closed socket. */
        void stop() {
            lock.lock();
            try {
                stopped = true;
                queue.clear();
                queuedBytes = 0;
                changed.signalAll();
            } finally {
                lock.unlock();
            }
        }

        private void readLoop() {
            try {
                InputStream in = source.getInputStream();
                byte[] buffer = new byte[chunkBytes];
                while (true) {
                    int room = awaitRoom();
                    if (room < 0) {
                        return;
                    }
                    int n = in.read(buffer, 0, Math.min(room, buffer.length));
                    long arrival = System.nanoTime();
                    enqueue(n < 0 ? null : Arrays.copyOf(buffer, n), arrival);
                    if (n < 0) {
                        return;
                    }
                }
            } catch (IOException | InterruptedException e) {
                connection.close();
            }
        }

        /** Waits until the queue has room; returns how many bytes may be read, or -1 once the pipe is stopped. */
        private int awaitRoom() throws InterruptedException {
            lock.lock();
            try {
                while (!stopped && queuedBytes >= bufferLimitBytes) {
                    changed.await();
                }
                return stopped ? -1 : (int) (bufferLimitBytes - queuedBytes);
            } finally {
                lock.unlock();
            }
        }

        private void enqueue(byte[] bytes, long arrivalNanos) {
            Delay delay = flow == Flow.TO_TARGET ? toTarget : toClient;
            lock.lock();
            try {
                long release = arrivalNanos + delay.draw();
                if (lastReleaseNanos != Long.MIN_VALUE && release - lastReleaseNanos < 0) {
                    release = lastReleaseNanos;
                }
                lastReleaseNanos = release;
                Chunk chunk = new Chunk(bytes, release);
                queue.addLast(chunk);
                queuedBytes += chunk.size();
                changed.signalAll();
            } finally {
                lock.unlock();
            }
        }

        private void writeLoop() {
            try {
                OutputStream out = sink.getOutputStream();
                while (true) {
                    Chunk chunk = awaitRelease();
                    if (chunk == null) {
                        return;
                    }
                    if (chunk.bytes() == null) {
                        sink.shutdownOutput();
                        connection.finished();
                        return;
                    }
                    out.write(chunk.bytes());
                    out.flush();
                    lock.lock();
                    try {
                        if (stopped) {
                            return;
                        }
                        queue.removeFirst();
                        queuedBytes -= chunk.size();
                        changed.signalAll();
                    } finally {
                        lock.unlock();
                    }
                }
            } catch (IOException | InterruptedException e) {
                connection.close();
            }
        }

        /**
         * Waits until the head of the queue is due and the proxy is not a black hole; returns it without removing
         * it (its bytes count against the limit until written), or null once the pipe is stopped.
         */
        private Chunk awaitRelease() throws InterruptedException {
            lock.lock();
            try {
                while (true) {
                    if (stopped) {
                        return null;
                    }
                    Chunk head = queue.peekFirst();
                    if (head == null || blackhole) {
                        changed.await();
                        continue;
                    }
                    long wait = head.releaseNanos() - System.nanoTime();
                    if (wait <= 0) {
                        return head;
                    }
                    changed.awaitNanos(wait);
                }
            } finally {
                lock.unlock();
            }
        }
    }

    /** Settings of a {@link DelayProxy}; {@link #start()} binds the port and starts accepting. */
    public static final class Builder {
        private final String host;
        private final int port;
        private int bufferLimitBytes = 1 << 20;
        private int chunkBytes = 16 * 1024;
        private Duration connectTimeout = Duration.ofSeconds(5);

        private Builder(String host, int port) {
            this.host = Objects.requireNonNull(host, "host");
            if (port < 1 || port > 65_535) {
                throw new IllegalArgumentException("target port out of range: " + port);
            }
            this.port = port;
        }

        /** The most bytes one direction of one connection holds before the proxy stops reading it (default 1 MiB). */
        public Builder bufferLimitBytes(int bytes) {
            if (bytes < 1) {
                throw new IllegalArgumentException("bufferLimitBytes must be positive: " + bytes);
            }
            this.bufferLimitBytes = bytes;
            return this;
        }

        /** The most bytes read at once, i.e. the largest chunk that gets one delay (default 16 KiB). */
        public Builder chunkBytes(int bytes) {
            if (bytes < 1) {
                throw new IllegalArgumentException("chunkBytes must be positive: " + bytes);
            }
            this.chunkBytes = bytes;
            return this;
        }

        /** How long the proxy waits for the target to accept a connection (default 5 s). */
        public Builder connectTimeout(Duration timeout) {
            this.connectTimeout = Objects.requireNonNull(timeout, "timeout");
            return this;
        }

        public DelayProxy start() {
            try {
                return new DelayProxy(this);
            } catch (IOException e) {
                throw new UncheckedIOException("delay proxy to " + host + ":" + port + " could not listen", e);
            }
        }
    }
}
