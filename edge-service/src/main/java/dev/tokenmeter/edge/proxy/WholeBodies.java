package dev.tokenmeter.edge.proxy;

import java.io.IOException;
import java.io.InputStream;

/** Reading a whole body — a request's, or an answer that is not a stream — exactly as long as it says it is. */
final class WholeBodies {

    private WholeBodies() {
    }

    /**
     * The whole body: exactly its declared length when there is one (one array of the right size, then the end of
     * the stream is read, which keeps the connection reusable), else everything until the end.
     */
    static byte[] readWhole(InputStream in, long contentLength) throws IOException {
        if (contentLength < 0 || contentLength > Integer.MAX_VALUE - 8) {
            return in.readAllBytes();
        }
        byte[] bytes = readDeclared(in, contentLength);
        if (bytes.length < contentLength) {
            throw new IOException("body shorter than its Content-Length");
        }
        return bytes;
    }

    /** At most {@code declared} bytes, then the end of the stream; an IOException when there is more. */
    static byte[] readDeclared(InputStream in, long declared) throws IOException {
        byte[] bytes = in.readNBytes((int) declared);
        if (in.read() >= 0) {
            throw new IOException("body longer than its Content-Length");
        }
        return bytes;
    }
}
