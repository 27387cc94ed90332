package dev.tokenmeter.testkit;

/** A Redis server for tests; clients log in as an ACL user, as in a deployment. */
public interface RedisEngine {

    String host();

    int port();

    /** The ACL user clients log in as (empty when the URI carries none, e.g. an external Redis without ACLs). */
    String user();

    /** That user's password (empty when none); never print it. */
    String password();

    /** redis://user:password@host:port, what every client connects with; it carries the password: never print it. */
    String uri();

    /** Stops the server (fault tests); start() brings it back on the same port. */
    void stop();

    void start();

    boolean isRunning();
}
