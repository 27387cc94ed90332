package dev.tokenmeter.edge.proxy;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The upstream's response body as a blocking {@link InputStream} that hands out every byte received before it
 * reports an error. The JDK's own {@code BodyHandlers.ofInputStream()} throws as soon as the connection fails,
 * dropping chunks that had already arrived; for a stream cut mid-way those are exactly the chunks the caller
 * has a right to and the deltas we bill from. One list of buffers is requested at a time (back-pressure).
 * A read that waits longer than the idle timeout for the next bytes fails (and cancels the exchange), so a
 * stream that stalls after its headers cannot hold a call open forever.
 */
final class UpstreamBody extends InputStream implements HttpResponse.BodySubscriber<InputStream> {

    /** A handler whose bodies fail a read that waits longer than {@code idleTimeout} for the next bytes. */
    static HttpResponse.BodyHandler<InputStream> handler(Duration idleTimeout) {
        return info -> new UpstreamBody(idleTimeout);
    }

    private static final Object END = new Object();

    private final long idleTimeoutNanos;

    private final BlockingQueue<Object> queue = new LinkedBlockingQueue<>();
    private volatile Flow.Subscription subscription;
    private Iterator<ByteBuffer> currentList;
    private ByteBuffer current;
    private boolean done;
    private Throwable error;
    private volatile boolean closed;

    private UpstreamBody(Duration idleTimeout) {
        this.idleTimeoutNanos = idleTimeout.toNanos();
    }

    @Override
    public CompletionStage<InputStream> getBody() {
        return CompletableFuture.completedFuture(this);
    }

    @Override
    public void onSubscribe(Flow.Subscription s) {
        subscription = s;
        if (closed) {
            s.cancel();
        } else {
            s.request(1);
        }
    }

    @Override
    public void onNext(List<ByteBuffer> item) {
        queue.add(item);
    }

    @Override
    public void onError(Throwable throwable) {
        queue.add(throwable);
    }

    @Override
    public void onComplete() {
        queue.add(END);
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        while (current == null || !current.hasRemaining()) {
            if (currentList != null && currentList.hasNext()) {
                current = currentList.next();
                continue;
            }
            if (closed) {
                throw new IOException("closed");
            }
            if (done) {
                return -1;
            }
            if (error != null) {
                throw new IOException("upstream body failed: " + error, error);
            }
            Object item;
            try {
                item = queue.poll(idleTimeoutNanos, TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while reading the upstream body");
            }
            if (item == null) {
                error = new IOException("no bytes from the upstream for " + Duration.ofNanos(idleTimeoutNanos).toMillis() + " ms");
                Flow.Subscription s = subscription;
                if (s != null) {
                    s.cancel();
                }
            } else if (item == END) {
                done = true;
            } else if (item instanceof Throwable t) {
                error = t;
            } else {
                @SuppressWarnings("unchecked")
                List<ByteBuffer> buffers = (List<ByteBuffer>) item;
                currentList = buffers.iterator();
                current = null;
                subscription.request(1);
            }
        }
        int n = Math.min(len, current.remaining());
        current.get(b, off, n);
        return n;
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    /** Stops reading: cancels the subscription, which aborts the upstream exchange if it is still running. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Flow.Subscription s = subscription;
            // A body read to its end has given its connection back to the pool already; cancel only a partial one.
            if (s != null && !done) {
                s.cancel();
            }
        }
    }
}
