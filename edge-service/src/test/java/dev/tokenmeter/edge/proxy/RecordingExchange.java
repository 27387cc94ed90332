package dev.tokenmeter.edge.proxy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A {@link ProxyExchange} in memory: the request is given, the answer recorded. {@link #clientLeavesAtWrite} makes
 * the caller disconnect mid-stream. "answered" (the answer complete) and "finished" go on the shared timeline.
 */
final class RecordingExchange implements ProxyExchange {

    private final Map<String, String> requestHeaders = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
    private final byte[] requestBody;
    private final List<String> timeline;
    final Map<String, String> headers = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
    final ByteArrayOutputStream body = new ByteArrayOutputStream();
    int status;
    boolean committed;
    boolean finished;
    /** The caller is gone from this write on (1 = the first write of the body); 0: never. */
    int clientLeavesAtWrite;
    private int writes;

    RecordingExchange(String serviceKey, String json, List<String> timeline) {
        this.requestBody = json.getBytes(StandardCharsets.UTF_8);
        this.timeline = timeline;
        if (serviceKey != null) {
            requestHeaders.put("Authorization", "Bearer " + serviceKey);
        }
        requestHeaders.put("Content-Type", "application/json");
    }

    String bodyText() {
        return body.toString(StandardCharsets.UTF_8);
    }

    @Override
    public String requestHeader(String name) {
        return requestHeaders.get(name);
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
            headers.remove(name);
        } else {
            headers.put(name, value);
        }
    }

    @Override
    public boolean committed() {
        return committed;
    }

    @Override
    public OutputStream responseBody() {
        return new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                write(new byte[]{(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                writes++;
                if (clientLeavesAtWrite > 0 && writes >= clientLeavesAtWrite) {
                    throw new IOException("client gone");
                }
                body.write(b, off, len);
            }

            @Override
            public void flush() throws IOException {
                if (clientLeavesAtWrite > 0 && writes >= clientLeavesAtWrite) {
                    throw new IOException("client gone");
                }
                committed = true;
            }

            @Override
            public void close() {
                committed = true;
                timeline.add("answered");
            }
        };
    }

    @Override
    public void respond(int status, String contentType, byte[] bytes) {
        this.status = status;
        headers.put("Content-Type", contentType);
        body.writeBytes(bytes);
        committed = true;
        timeline.add("answered");
    }

    @Override
    public void finish() {
        if (!finished) {
            finished = true;
            timeline.add("finished");
        }
    }
}
