package dev.tokenmeter.testkit.net;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** A tiny TCP server on a free loopback port that runs one handler per connection on a virtual thread. */
final class LoopbackServer implements AutoCloseable {

    /** What the server does with one accepted connection; the server closes the socket afterwards. */
    interface Handler {
        void handle(Socket socket) throws IOException;
    }

    private final ServerSocket server;
    private final Handler handler;
    private final Set<Socket> open = ConcurrentHashMap.newKeySet();

    private LoopbackServer(Handler handler) throws IOException {
        this.server = new ServerSocket(0, 128, InetAddress.getLoopbackAddress());
        this.handler = handler;
        Thread.ofVirtual().name("loopback-server-" + server.getLocalPort()).start(this::acceptLoop);
    }

    static LoopbackServer start(Handler handler) {
        try {
            return new LoopbackServer(handler);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Echoes every byte until the client's EOF, then half-closes its side too. */
    static LoopbackServer echo() {
        return start(socket -> {
            copy(socket.getInputStream(), socket.getOutputStream());
            socket.shutdownOutput();
        });
    }

    static long copy(InputStream in, OutputStream out) throws IOException {
        byte[] buffer = new byte[8192];
        long total = 0;
        for (int n; (n = in.read(buffer)) >= 0; total += n) {
            out.write(buffer, 0, n);
            out.flush();
        }
        return total;
    }

    int port() {
        return server.getLocalPort();
    }

    /** Connections this server has accepted and not yet closed. */
    int openConnections() {
        return open.size();
    }

    private void acceptLoop() {
        while (!server.isClosed()) {
            Socket socket;
            try {
                socket = server.accept();
            } catch (IOException e) {
                return;
            }
            open.add(socket);
            Thread.ofVirtual().start(() -> {
                try (socket) {
                    handler.handle(socket);
                } catch (IOException e) {
                    // the peer went away; the test looks at what the client saw
                } finally {
                    open.remove(socket);
                }
            });
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        for (Socket socket : open) {
            socket.close();
        }
    }
}
