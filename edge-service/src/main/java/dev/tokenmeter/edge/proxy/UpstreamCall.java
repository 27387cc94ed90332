package dev.tokenmeter.edge.proxy;

import java.io.IOException;
import java.time.Duration;
import java.util.Map;

/** The proxy's one request to the upstream; {@link Upstream} makes it over HTTP, unit tests script it. */
public interface UpstreamCall {

    /**
     * POSTs {@code body} to the upstream's {@code path} and waits for the response headers.
     *
     * @throws Upstream.UpstreamTimeoutException no headers within the idle timeout
     * @throws IOException                       the upstream could not be reached or failed before its headers
     */
    Upstream.Answer post(String path, Map<String, String> headers, String contentType, byte[] body)
            throws IOException, InterruptedException;

    /**
     * GETs the upstream's {@code pathAndQuery} (the Batch API's reads) and waits for the response headers; an upstream
     * without reads (a unit test's) fails it.
     */
    default Upstream.Answer get(String pathAndQuery, Map<String, String> headers) throws IOException, InterruptedException {
        throw new IOException("this upstream serves no GET");
    }

    /** UPSTREAM_REQUEST_TIMEOUT: the longest wait for the headers or for the next bytes of a body. */
    Duration idleTimeout();
}
