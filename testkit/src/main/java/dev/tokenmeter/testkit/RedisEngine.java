package dev.tokenmeter.testkit;

/** A Redis server for tests. */
public interface RedisEngine {

    String host();

    int port();

    /** redis://host:port */
    String uri();

    /** Stops the server (fault tests); start() brings it back on the same port. */
    void stop();

    void start();

    boolean isRunning();
}
