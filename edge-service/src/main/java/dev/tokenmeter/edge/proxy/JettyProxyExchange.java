package dev.tokenmeter.edge.proxy;

import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;

/**
 * A {@link ProxyExchange} on Jetty's core request and response (no servlet layer). The response is ended at the
 * latest by {@link #finish()}, which also completes Jetty's callback: from then on Jetty may reuse the connection
 * for the caller's next request, while the proxy's own bookkeeping (the quota settle) goes on off the caller's wait.
 */
final class JettyProxyExchange implements ProxyExchange {

    private final Request request;
    private final Response response;
    private final Callback callback;
    private OutputStream out;
    private boolean ended;
    private boolean finished;

    JettyProxyExchange(Request request, Response response, Callback callback) {
        this.request = request;
        this.response = response;
        this.callback = callback;
    }

    @Override
    public String requestHeader(String name) {
        return request.getHeaders().get(name);
    }

    @Override
    public long requestContentLength() {
        return request.getLength();
    }

    @Override
    public InputStream requestBody() {
        return Content.Source.asInputStream(request);
    }

    @Override
    public void status(int status) {
        response.setStatus(status);
    }

    @Override
    public void header(String name, String value) {
        if (value == null) {
            response.getHeaders().remove(name);
        } else {
            response.getHeaders().put(name, value);
        }
    }

    @Override
    public boolean committed() {
        return response.isCommitted();
    }

    @Override
    public OutputStream responseBody() {
        if (out == null) {
            OutputStream sink = Content.Sink.asOutputStream(response);
            out = new java.io.FilterOutputStream(sink) {
                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    sink.write(b, off, len);
                }

                @Override
                public void close() throws IOException {
                    if (!ended) {
                        ended = true;
                        sink.close();
                    }
                }
            };
        }
        return out;
    }

    @Override
    public void respond(int status, String contentType, byte[] body) throws IOException {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, contentType);
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, body.length);
        ended = true;
        Content.Sink.write(response, true, ByteBuffer.wrap(body));
    }

    @Override
    public void finish() {
        if (finished) {
            return;
        }
        finished = true;
        if (!ended) {
            ended = true;
            try {
                Content.Sink.write(response, true, ByteBuffer.allocate(0));
            } catch (IOException e) {
                callback.failed(e);
                return;
            }
        }
        callback.succeeded();
    }

    /** Tells Jetty the exchange failed (it answers 500 if nothing was sent yet, else aborts the connection). */
    void fail(Throwable failure) {
        if (!finished) {
            finished = true;
            callback.failed(failure);
        }
    }
}
