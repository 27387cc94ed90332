package dev.tokenmeter.testkit.openai;

import java.time.Duration;
import java.util.Objects;

/**
 * How the fake answers one request. Enqueue one with {@link FakeOpenAi#enqueue(Behavior)} (it then applies to
 * exactly the next request) or steer a single call with a directive in its last user message
 * (see the package documentation). An enqueued behaviour wins over the directives of the request it applies to.
 */
public sealed interface Behavior {

    /** A normal, successful answer. */
    static Behavior ok() {
        return Ok.INSTANCE;
    }

    /** Answer with this HTTP status and OpenAI's error JSON ({@code {"error":{"message","type","param","code"}}}). */
    static Behavior status(int code) {
        return new Status(code);
    }

    /** Answer normally, after waiting this long before the first byte. */
    static Behavior latency(Duration delay) {
        return new Latency(delay);
    }

    /** Accept the request, send nothing at all until {@code max} elapses, then drop the connection. */
    static Behavior hang(Duration max) {
        return new Hang(max);
    }

    /**
     * Streaming: send the role chunk and {@code chunks} content chunks, then drop the connection without the
     * finish chunk, the usage chunk and {@code [DONE]}. Non-streaming: send the headers, then drop the connection.
     */
    static Behavior cutStreamAfter(int chunks) {
        return new CutStreamAfter(chunks);
    }

    /**
     * Streaming: send every content chunk and the finish chunk as usual, then wait {@code delay} before the usage
     * chunk and {@code [DONE]} ({@code response.completed} on /v1/responses), as OpenAI does when it takes a while
     * to account a reply (reasoning models). Non-streaming: answer normally.
     */
    static Behavior usageAfter(Duration delay) {
        return new UsageAfter(delay);
    }

    enum Ok implements Behavior { INSTANCE }

    record UsageAfter(Duration delay) implements Behavior {
        public UsageAfter {
            Objects.requireNonNull(delay, "delay");
            if (delay.isNegative()) {
                throw new IllegalArgumentException("delay must not be negative");
            }
        }
    }

    record Status(int code) implements Behavior {
        public Status {
            if (code < 400 || code > 599) {
                throw new IllegalArgumentException("status must be an error code 400..599, was " + code);
            }
        }
    }

    record Latency(Duration delay) implements Behavior {
        public Latency {
            Objects.requireNonNull(delay, "delay");
            if (delay.isNegative()) {
                throw new IllegalArgumentException("delay must not be negative");
            }
        }
    }

    record Hang(Duration max) implements Behavior {
        public Hang {
            Objects.requireNonNull(max, "max");
            if (max.isNegative()) {
                throw new IllegalArgumentException("max must not be negative");
            }
        }
    }

    record CutStreamAfter(int chunks) implements Behavior {
        public CutStreamAfter {
            if (chunks < 0) {
                throw new IllegalArgumentException("chunks must not be negative");
            }
        }
    }
}
