package dev.tokenmeter.edge.proxy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * A {@link ProxyExchange} held in memory, for an async job (ADR 0083): the request is the job's stored body, the
 * answer the proxy writes is kept (status, headers, body) to be stored as the job's result.
 */
final class CapturedExchange implements ProxyExchange {

    private final byte[] requestBody;
    private final Map<String, String> responseHeaders = new HashMap<>();
    private final ByteArrayOutputStream body = new ByteArrayOutputStream();
    private int status = 200;
    private String contentType = "application/json";
    private boolean committed;

    CapturedExchange(byte[] requestBody) {
        this.requestBody = requestBody;
    }

    @Override
    public String requestHeader(String name) {
        return null; // the job's call carries no caller headers (its key was checked when it was queued)
    }

    @Override
    public long requestContentLength() {
        return requestBody.length;
    }

    @Override
    public InputStream requestBody() {
        return new ByteArrayInputStream(requestBody);
    }

    @Override
    public void status(int status) {
        this.status = status;
    }

    @Override
    public void header(String name, String value) {
        if (value == null) {
            responseHeaders.remove(name.toLowerCase(Locale.ROOT));
        } else {
            responseHeaders.put(name.toLowerCase(Locale.ROOT), value);
        }
    }

    @Override
    public boolean committed() {
        return committed;
    }

    @Override
    public OutputStream responseBody() {
        committed = true;
        return body;
    }

    @Override
    public void respond(int status, String contentType, byte[] bytes) {
        this.status = status;
        this.contentType = contentType;
        this.body.writeBytes(bytes);
        committed = true;
    }

    @Override
    public void finish() {
        committed = true;
    }

    int status() {
        return status;
    }

    String contentType() {
        return contentType;
    }

    byte[] body() {
        return body.toByteArray();
    }
}
