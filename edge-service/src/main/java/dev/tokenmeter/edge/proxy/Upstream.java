package dev.tokenmeter.edge.proxy;

import org.eclipse.jetty.client.ByteBufferRequestContent;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.client.RandomConnectionPool;
import org.eclipse.jetty.client.Request;
import org.eclipse.jetty.client.Response;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpMethod;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.util.thread.Invocable;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The edge's client for the upstream (OpenAI or a compatible server): Jetty's {@link HttpClient}, HTTP/1.1 with
 * pooled keep-alive connections, TLS with host-name verification, no redirects, no content decoding (bodies pass
 * through as the upstream sent them), no {@code User-Agent} of its own.
 *
 * <p>One call: {@link #send} returns when the response headers are in; the body is then read as a blocking
 * {@link InputStream} on the caller's (virtual) thread. The body is pulled chunk by chunk as the caller reads it
 * (back-pressure: nothing is buffered ahead), so when the upstream cuts a stream every byte that arrived before the
 * cut is read first and only then does a read fail. Closing the stream before its end aborts the exchange, which
 * is how a caller's disconnect reaches the upstream.
 *
 * <p>Timeouts: the connect timeout, and one idle timeout for the rest: no bytes for that long, while waiting for
 * the headers or between two chunks of a stream, fails the call ({@link UpstreamTimeoutException} before the
 * headers, an {@link IOException} from a body read after them). A long stream that keeps sending never times out.
 */
public final class Upstream implements UpstreamCall, AutoCloseable {

    private final HttpClient client;
    private final URI baseUrl;
    private final Duration idleTimeout;
    /** The URI of each path called, parsed once (a handful of endpoints; parsing one per call showed in profiles). */
    private final Map<String, URI> uris = new ConcurrentHashMap<>();

    private Upstream(URI baseUrl, Duration connectTimeout, Duration idleTimeout, int maxConnections) {
        this.baseUrl = Objects.requireNonNull(baseUrl, "baseUrl");
        this.idleTimeout = Objects.requireNonNull(idleTimeout, "idleTimeout");
        QueuedThreadPool threads = new QueuedThreadPool();
        threads.setName("upstream-client");
        threads.setDaemon(true);
        this.client = new HttpClient();
        client.setExecutor(threads);
        client.setConnectTimeout(connectTimeout.toMillis());
        client.setIdleTimeout(Math.max(idleTimeout.toMillis(), 30_000));
        client.setFollowRedirects(false);
        client.setMaxConnectionsPerDestination(maxConnections);
        // Calls beyond the connections wait for one; the server's own limits bound how many there can be.
        client.setMaxRequestsQueuedPerDestination(1 << 16);
        // Jetty's default pool scans its connections from the first for an idle one: after a burst has opened
        // hundreds, every call walks past the busy ones. A random start finds an idle connection in a probe or two.
        client.getTransport().setConnectionPoolFactory(destination -> new RandomConnectionPool(destination, maxConnections, 1));
        // Our response listeners only hand the headers and the body's content source to the waiting call (which
        // reads the body itself, blocking on its own virtual thread): they never block, so Jetty may run them on
        // its I/O thread instead of handing each response to another thread first (one context switch less).
        client.getTransport().setInvocationType(Invocable.InvocationType.NON_BLOCKING);
        client.setUserAgentField(null);
        client.getContentDecoderFactories().clear();
        try {
            client.start();
        } catch (Exception e) {
            throw new IllegalStateException("the upstream HTTP client did not start", e);
        }
    }

    /**
     * @param idleTimeout    UPSTREAM_REQUEST_TIMEOUT: the longest wait for the headers or for the next bytes of a body
     * @param maxConnections the most connections kept open to the upstream (calls beyond wait for one)
     */
    public static Upstream create(URI baseUrl, Duration connectTimeout, Duration idleTimeout, int maxConnections) {
        return new Upstream(baseUrl, connectTimeout, idleTimeout, maxConnections);
    }

    public Duration idleTimeout() {
        return idleTimeout;
    }

    /**
     * An answer whose headers have arrived; read {@link #body()} to its end or close it. {@link #abort()} (from any
     * thread) fails the exchange: a read blocked on the body then fails with an {@link IOException}.
     */
    public record Answer(int status, HttpFields headers, InputStream body, Runnable aborter) {

        public void abort() {
            aborter.run();
        }

        public String header(String name) {
            return headers.get(name);
        }

        /** The declared Content-Length, or -1. */
        public long contentLength() {
            try {
                return headers.getLongField(HttpHeader.CONTENT_LENGTH);
            } catch (NumberFormatException e) {
                return -1; // Jetty's parser refuses such a response first; read to the end then
            }
        }
    }

    /** The upstream sent no headers within the idle timeout. */
    public static final class UpstreamTimeoutException extends IOException {
        UpstreamTimeoutException(String message) {
            super(message);
        }
    }

    /**
     * POSTs {@code body} to {@code baseUrl + path} and waits for the response headers.
     *
     * @throws UpstreamTimeoutException no headers within the idle timeout
     * @throws IOException              the upstream could not be reached or failed before its headers
     */
    public Answer post(String path, Map<String, String> headers, String contentType, byte[] body)
            throws IOException, InterruptedException {
        return send(HttpMethod.POST, uris.computeIfAbsent(path, p -> URI.create(baseUrl + p)), headers, contentType, body);
    }

    /**
     * GETs {@code baseUrl + pathAndQuery} (the Batch API's reads, ADR 0087) and waits for the response headers; the
     * URI is not cached (ids and queries vary).
     */
    @Override
    public Answer get(String pathAndQuery, Map<String, String> headers) throws IOException, InterruptedException {
        return send(HttpMethod.GET, URI.create(baseUrl + pathAndQuery), headers, null, null);
    }

    private Answer send(HttpMethod method, URI uri, Map<String, String> headers, String contentType, byte[] body)
            throws IOException, InterruptedException {
        Request request = client.newRequest(uri)
                .method(method)
                .idleTimeout(idleTimeout.toMillis(), TimeUnit.MILLISECONDS);
        if (body != null) {
            request.body(new ByteBufferRequestContent(contentType, ByteBuffer.wrap(body)));
        }
        request.headers(h -> headers.forEach(h::put));
        CompletableFuture<Answer> answer = new CompletableFuture<>();
        request.onResponseContentSource((response, source) ->
                answer.complete(new Answer(response.getStatus(), response.getHeaders(), Content.Source.asInputStream(source),
                        () -> request.abort(new IOException("upstream exchange aborted by the edge")))));
        request.send(result -> {
            if (result.isFailed()) {
                answer.completeExceptionally(result.getFailure());
            } else {
                // A response without content never offers a content source.
                Response response = result.getResponse();
                answer.complete(new Answer(response.getStatus(), response.getHeaders(), InputStream.nullInputStream(), () -> { }));
            }
        });
        try {
            // The idle timeout fails the exchange first; this bound only guards against a lost notification.
            return answer.get(idleTimeout.toMillis() + 5_000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (isTimeout(cause)) {
                throw new UpstreamTimeoutException("no answer from the upstream within " + idleTimeout.toMillis() + " ms");
            }
            throw cause instanceof IOException io ? io : new IOException(String.valueOf(cause), cause);
        } catch (TimeoutException e) {
            request.abort(e);
            throw new UpstreamTimeoutException("no answer from the upstream within " + idleTimeout.toMillis() + " ms");
        } catch (InterruptedException e) {
            request.abort(new InterruptedIOException("interrupted"));
            throw e;
        }
    }

    private static boolean isTimeout(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof TimeoutException || c instanceof java.net.SocketTimeoutException) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void close() {
        try {
            client.stop();
        } catch (Exception e) {
            // stopping is best effort at shutdown
        }
    }
}
