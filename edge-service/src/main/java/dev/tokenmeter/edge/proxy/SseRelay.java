package dev.tokenmeter.edge.proxy;

import dev.tokenmeter.edge.tokens.StreamUsageTracker;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Relays an upstream's SSE stream to the caller: copies it line by line and flushes at every event boundary (blank
 * line), so the caller sees each chunk as soon as the upstream sends it; a {@link StreamUsageTracker} reads each line
 * on the side.
 *
 * <p>When the caller disconnects mid-stream the upstream is not aborted: the relay goes on reading it (the caller
 * gets nothing more), up to the drain timeout, to receive the usage chunk (ADR 0052). {@link #cutDrains} stops every
 * drain at once (shutdown).
 */
final class SseRelay {

    private final Duration drainTimeout;
    /** Streams being read on after their caller left (see {@link #drain}). */
    private final Set<Drain> drains = ConcurrentHashMap.newKeySet();

    SseRelay(Duration drainTimeout) {
        this.drainTimeout = Objects.requireNonNull(drainTimeout, "drainTimeout");
    }

    /**
     * How a relayed stream ended.
     *
     * @param clientGone   the caller disconnected before the end
     * @param upstreamCut  the upstream's stream failed before its end
     * @param drainFailure after the caller left: null when the stream ended or its usage arrived, else why the drain
     *                     stopped short ({@code timeout}, {@code shutdown}, {@code upstream_error},
     *                     {@code upstream_ended}, {@code disabled})
     */
    record Relayed(boolean clientGone, boolean upstreamCut, String drainFailure) {
    }

    /**
     * Sends the status and headers at once, then the stream; returns at its end, or when the caller left and the
     * drain is over. The upstream's body is closed on return (before its end, that aborts the exchange). The
     * caller's response is not ended here: that is the caller's to do once the call is billed.
     */
    /**
     * A copy of the stream as relayed, for the response cache, up to {@code maxBytes}: past that it stops copying and
     * is not {@link #complete}.
     */
    static final class Capture {
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream(4096);
        private final int maxBytes;
        private boolean overflow;

        Capture(int maxBytes) {
            this.maxBytes = maxBytes;
        }

        void add(byte[] buf, int n) {
            if (overflow || bytes.size() + n > maxBytes) {
                overflow = true;
                return;
            }
            bytes.write(buf, 0, n);
        }

        boolean complete() {
            return !overflow;
        }

        byte[] bytes() {
            return bytes.toByteArray();
        }
    }

    Relayed relay(ProxyExchange ctx, Upstream.Answer answer, String contentType, StreamUsageTracker tracker) {
        return relay(ctx, answer, contentType, tracker, null);
    }

    /** @param capture a copy of what the caller got, for the response cache; null for none */
    Relayed relay(ProxyExchange ctx, Upstream.Answer answer, String contentType, StreamUsageTracker tracker, Capture capture) {
        UpstreamExchange.passHeaders(ctx, answer);
        ctx.status(answer.status());
        ctx.header("Content-Type", contentType);
        ctx.header("Cache-Control", "no-cache");
        boolean clientGone = false;
        boolean upstreamCut = false;
        String drainFailure = null;
        InputStream in = answer.body();
        ByteArrayOutputStream line = new ByteArrayOutputStream(512);
        byte[] buf = new byte[8192];
        try {
            OutputStream out;
            try {
                out = ctx.responseBody();
                out.flush(); // the status and headers go out now, before the first chunk
            } catch (IOException e) {
                clientGone = true;
                out = null;
            }
            while (!clientGone) {
                int n;
                try {
                    n = in.read(buf);
                } catch (IOException e) {
                    upstreamCut = true;
                    break;
                }
                if (n < 0) {
                    break;
                }
                boolean boundary = track(tracker, line, buf, n);
                if (capture != null) {
                    capture.add(buf, n);
                }
                try {
                    out.write(buf, 0, n);
                    if (boundary) {
                        out.flush();
                    }
                } catch (IOException e) {
                    clientGone = true;
                }
            }
            if (clientGone) {
                drainFailure = drain(answer, tracker, line, buf);
            } else {
                try {
                    endLine(tracker, line);
                    out.flush();
                } catch (IOException e) {
                    clientGone = true;
                }
            }
        } finally {
            try {
                in.close(); // before the end (a disconnect past the drain) this aborts the upstream exchange too
            } catch (IOException ignored) {
                // closing is best effort
            }
        }
        return new Relayed(clientGone, upstreamCut, drainFailure);
    }

    /** A last line without its newline, at the stream's end. */
    private static void endLine(StreamUsageTracker tracker, ByteArrayOutputStream line) {
        if (line.size() > 0) {
            tracker.onLine(line.toString(StandardCharsets.UTF_8).strip());
        }
    }

    /** Feeds the complete lines in {@code buf[0..n)} to the tracker; true when a blank line (event boundary) passed. */
    private static boolean track(StreamUsageTracker tracker, ByteArrayOutputStream line, byte[] buf, int n) {
        boolean boundary = false;
        for (int i = 0; i < n; i++) {
            byte b = buf[i];
            line.write(b);
            if (b == '\n') {
                String text = line.toString(StandardCharsets.UTF_8);
                String stripped = text.endsWith("\r\n") ? text.substring(0, text.length() - 2) : text.substring(0, text.length() - 1);
                if (stripped.isEmpty()) {
                    boundary = true;
                } else {
                    tracker.onLine(stripped);
                }
                line.reset();
            }
        }
        return boundary;
    }

    /**
     * The caller has gone: reads the rest of the upstream's stream into the tracker only, until its usage arrives,
     * the stream ends, or the drain timeout (or the edge's shutdown, {@link #cutDrains}) aborts the exchange.
     *
     * @return null when the stream ended or its usage arrived, else why the drain stopped short
     */
    private String drain(Upstream.Answer answer, StreamUsageTracker tracker, ByteArrayOutputStream line, byte[] buf) {
        if (tracker.reportedUsage().isPresent()) {
            return null;
        }
        if (drainTimeout.isZero()) {
            return "disabled";
        }
        Drain drain = new Drain(answer);
        drains.add(drain);
        CompletableFuture.delayedExecutor(drainTimeout.toNanos(), TimeUnit.NANOSECONDS).execute(() -> drain.cut("timeout"));
        try {
            InputStream in = answer.body();
            while (tracker.reportedUsage().isEmpty()) {
                int n;
                try {
                    n = in.read(buf);
                } catch (IOException e) {
                    return drain.reason == null ? "upstream_error" : drain.reason;
                }
                if (n < 0) {
                    endLine(tracker, line);
                    return tracker.reportedUsage().isPresent() ? null : "upstream_ended";
                }
                track(tracker, line, buf, n);
            }
            return null;
        } finally {
            drain.done = true;
            drains.remove(drain);
        }
    }

    /** One stream being drained after its caller left; cut by its timer or at shutdown. */
    private static final class Drain {
        private final Upstream.Answer answer;
        volatile String reason;
        volatile boolean done;

        Drain(Upstream.Answer answer) {
            this.answer = answer;
        }

        synchronized void cut(String why) {
            if (done || reason != null) {
                return;
            }
            reason = why;
            answer.abort();
        }
    }

    /**
     * Cuts every drain under way (their calls are billed ESTIMATED, drain=shutdown, at once): at shutdown, so a
     * stream whose caller left does not hold the edge past its grace period.
     */
    void cutDrains() {
        for (Drain d : drains) {
            d.cut("shutdown");
        }
    }
}
