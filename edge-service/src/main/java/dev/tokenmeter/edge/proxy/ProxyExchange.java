package dev.tokenmeter.edge.proxy;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * One proxied HTTP call as the proxy sees it: the request's headers and body, the response's status, headers and
 * body. Blocking, for a virtual thread. {@link JettyProxyExchange} is the server's implementation; keeping the
 * proxy to this much of HTTP keeps it off any web framework's per-request machinery.
 */
public interface ProxyExchange {

    /** A request header (case-insensitive name), or null. */
    String requestHeader(String name);

    /** The request's declared Content-Length, or -1 when it has none (chunked). */
    long requestContentLength();

    InputStream requestBody() throws IOException;

    void status(int status);

    /** Sets a response header, replacing any value; a null value removes it. */
    void header(String name, String value);

    /** True once the status and headers are on their way to the caller (they can no longer change). */
    boolean committed();

    /**
     * The response body as a stream: {@code flush()} sends what was written (the status and headers first),
     * {@code close()} ends the response.
     */
    OutputStream responseBody() throws IOException;

    /** Answers with the whole body at once and ends the response; the caller has it when this returns. */
    void respond(int status, String contentType, byte[] body) throws IOException;

    /**
     * Ends the response if it is not ended yet and hands the connection back for the caller's next request. After
     * this, nothing of the exchange may be used; what the proxy still does (settling the quota) is off the caller's
     * wait. Idempotent.
     */
    void finish();
}
