package dev.tokenmeter.edge.admin;

import dev.tokenmeter.edge.http.OpenAiError;

/**
 * A refused admin request, with the answer in OpenAI's error shape. Thrown by the validation and the routes; the
 * guard of {@link AdminApi} turns it into the response. No stack trace: it is an answer, not a fault.
 */
final class AdminError extends RuntimeException {

    final OpenAiError error;

    AdminError(OpenAiError error) {
        super(error.message(), null, false, false);
        this.error = error;
    }

    /** 400, naming the offending field ({@code param}, may be null). */
    static AdminError bad(String message, String param) {
        return new AdminError(OpenAiError.invalidRequest(message, param));
    }

    static AdminError notFound(String message) {
        return new AdminError(new OpenAiError(404, message, "invalid_request_error", null, "not_found", false, null));
    }

    static AdminError conflict(String message) {
        return new AdminError(new OpenAiError(409, message, "invalid_request_error", null, "conflict", false, null));
    }
}
