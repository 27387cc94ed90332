package dev.tokenmeter.testkit.openai;

/** A request the real API would reject with 400 {@code invalid_request_error}. */
final class BadRequestException extends RuntimeException {
    final String param;
    final String code;

    BadRequestException(String message, String param, String code) {
        super(message, null, false, false);
        this.param = param;
        this.code = code;
    }
}
