package dev.tokenmeter.edge.proxy.batch;

/** A batch input file or output line out of bounds: answered 400 with OpenAI's error JSON ({@code param}, {@code code}). */
public final class BatchInputException extends RuntimeException {

    private final String param;
    private final String code;

    public BatchInputException(String message, String param, String code) {
        super(message, null, false, false);
        this.param = param;
        this.code = code;
    }

    public String param() {
        return param;
    }

    public String code() {
        return code;
    }
}
