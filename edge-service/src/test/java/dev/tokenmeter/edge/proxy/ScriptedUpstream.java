package dev.tokenmeter.edge.proxy;

import org.eclipse.jetty.http.HttpFields;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * An {@link UpstreamCall} that answers with a scripted status, headers and body, sent in the given chunks (one per
 * read, as a network delivers them) and optionally cut after them; or fails before its headers.
 */
final class ScriptedUpstream implements UpstreamCall {

    /** What the proxy sent. */
    record Sent(String path, Map<String, String> headers, String body) {
    }

    final List<Sent> sent = new ArrayList<>();
    private int status = 200;
    private final HttpFields.Mutable headers = HttpFields.build();
    private List<String> chunks = List.of();
    private boolean cutAfterChunks;
    private IOException failure;
    boolean aborted;

    ScriptedUpstream answer(int status, String contentType, String... chunks) {
        this.status = status;
        headers.put("content-type", contentType);
        headers.put("x-request-id", "req_upstream_1");
        this.chunks = List.of(chunks);
        return this;
    }

    /** The body ends with a read error after its chunks, as when the upstream's connection drops. */
    ScriptedUpstream cutAfterChunks() {
        this.cutAfterChunks = true;
        return this;
    }

    ScriptedUpstream failing(IOException e) {
        this.failure = e;
        return this;
    }

    @Override
    public Upstream.Answer post(String path, Map<String, String> headers, String contentType, byte[] body) throws IOException {
        sent.add(new Sent(path, Map.copyOf(headers), new String(body, StandardCharsets.UTF_8)));
        if (failure != null) {
            throw failure;
        }
        return new Upstream.Answer(status, headers(), new ChunkedBody(), () -> aborted = true);
    }

    private HttpFields headers() {
        return headers.asImmutable();
    }

    @Override
    public Duration idleTimeout() {
        return Duration.ofSeconds(7);
    }

    /** Hands out one chunk per read. */
    private final class ChunkedBody extends InputStream {
        private int next;
        private byte[] current = new byte[0];
        private int pos;

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (pos == current.length) {
                if (next == chunks.size()) {
                    if (cutAfterChunks) {
                        throw new IOException("upstream connection reset");
                    }
                    return -1;
                }
                current = chunks.get(next++).getBytes(StandardCharsets.UTF_8);
                pos = 0;
            }
            int n = Math.min(len, current.length - pos);
            System.arraycopy(current, pos, b, off, n);
            pos += n;
            return n;
        }
    }
}
