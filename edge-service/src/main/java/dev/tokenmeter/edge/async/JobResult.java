package dev.tokenmeter.edge.async;

/**
 * How a job ended: {@code succeeded} (the upstream's 2xx answer), {@code failed} (an answer that retrying cannot
 * change: a 4xx, or the edge could not run it), or {@code dead} (429/5xx or unreachable on every attempt:
 * dead-lettered with {@code reason}, its reservation released). {@code body} is the answer as the sync route would
 * have given it.
 */
public record JobResult(String status, int httpStatus, String contentType, byte[] body, String reason) {

    public static final String SUCCEEDED = "succeeded";
    public static final String FAILED = "failed";
    public static final String DEAD = "dead";
}
