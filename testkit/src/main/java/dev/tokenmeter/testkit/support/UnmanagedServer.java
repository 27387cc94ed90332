package dev.tokenmeter.testkit.support;

/**
 * A server whose life the testkit does not control: a Testcontainers container (a restarted container gets a new
 * host port, which breaks the "back on the same port" contract of {@code start()}) or an external server (it
 * belongs to whoever runs it). {@link #stop()} and {@link #start()} refuse with the reason and the way out:
 * fault tests run on the embedded backend.
 */
public abstract class UnmanagedServer {

    private final String refusal;

    /**
     * @param backend the backend's name ("containers", "external")
     * @param name    what the server is ("Redis")
     * @param reason  why it cannot be stopped and started here
     */
    protected UnmanagedServer(String backend, String name, String reason) {
        this.refusal = "the " + backend + " backend does not stop or start " + name + " (" + reason
                + "); run fault tests with tokenmeter.test.backend=embedded";
    }

    /** Refused: see the class comment. */
    public final void stop() {
        throw new UnsupportedOperationException(refusal);
    }

    /** Refused: see the class comment. */
    public final void start() {
        throw new UnsupportedOperationException(refusal);
    }

    /** Containers: the testkit started it, so the container's state; external: always true. */
    public abstract boolean isRunning();
}
