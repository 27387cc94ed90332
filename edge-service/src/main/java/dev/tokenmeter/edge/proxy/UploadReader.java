package dev.tokenmeter.edge.proxy;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.tokens.ImageEstimate;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads the multipart uploads the edge bills (ADR 0088): {@code /v1/audio/transcriptions}, {@code /translations}
 * and {@code /v1/images/edits}. The body is read whole within {@link #MAX_UPLOAD_BYTES} (OpenAI's own bound), parsed
 * by {@link MultipartForm} only for its text fields and file sizes, and forwarded upstream byte for byte with the
 * caller's {@code Content-Type} (its boundary). The request's "tree" is the text fields (as JSON strings, {@code n}
 * as a number, {@code name[]} fields as arrays) plus {@link #UPLOAD_BYTES}, the files' total size, from which the
 * reservation is estimated.
 *
 * <p>A body that is too large, not multipart or malformed is refused with no event and nothing upstream (ADR 0053:
 * out of bounds). A well-formed request that cannot be billed exactly (a stream, an answer format without usage) is
 * refused with a REJECTED event, as images' {@code stream} is (ADR 0085).
 */
final class UploadReader {

    static final String TRANSCRIPTIONS = "/v1/audio/transcriptions";
    static final String TRANSLATIONS = "/v1/audio/translations";
    static final String IMAGES_EDITS = "/v1/images/edits";
    static final Set<String> ENDPOINTS = Set.of(TRANSCRIPTIONS, TRANSLATIONS, IMAGES_EDITS);

    /** OpenAI's bound on an audio upload (25 MB = 26,214,400 bytes); the whole multipart body is held to it. */
    static final long MAX_UPLOAD_BYTES = 25L << 20;
    /** The files' total bytes in the request's tree; set by the edge, never the caller's (a field of that name is overwritten). */
    static final String UPLOAD_BYTES = dev.tokenmeter.edge.tokens.UploadEstimate.UPLOAD_BYTES;
    /** OpenAI's bound on the images of one edit. */
    static final int MAX_EDIT_IMAGES = 16;

    /** Answer formats whose answer carries the usage (or, for a translation, the duration) that bills the call. */
    private static final Map<String, Set<String>> BILLABLE_FORMATS = Map.of(
            TRANSCRIPTIONS, Set.of("json", "verbose_json"),
            TRANSLATIONS, Set.of("verbose_json"));

    /**
     * Uploads handled at once: each may hold up to {@link #MAX_UPLOAD_BYTES} in memory until its call ends, so 16 keep
     * the worst case at 400 MB; one more is shed at once (503 {@code server_overloaded}, retry-after, no event).
     */
    static final int MAX_UPLOADS_IN_FLIGHT = 16;

    /** Counts the uploads in flight; other endpoints pass through. */
    static final class InFlight {
        private final java.util.concurrent.Semaphore permits;

        InFlight(int max) {
            this.permits = new java.util.concurrent.Semaphore(max);
        }

        /** False when {@code endpoint} is an upload and none more may be in flight now; else entered. */
        boolean enter(String endpoint) {
            return !ENDPOINTS.contains(endpoint) || permits.tryAcquire();
        }

        /** After {@link #enter} returned true. */
        void leave(String endpoint) {
            if (ENDPOINTS.contains(endpoint)) {
                permits.release();
            }
        }
    }

    private UploadReader() {
    }

    static RequestReader.ProxyRequest read(ProxyExchange ctx, String endpoint) throws RequestReader.BadRequest {
        String contentType = ctx.requestHeader("Content-Type");
        MultipartForm.Form form;
        byte[] body;
        try {
            String boundary = MultipartForm.boundary(contentType);
            body = RequestReader.body(ctx, MAX_UPLOAD_BYTES, null);
            form = MultipartForm.parse(body, boundary);
        } catch (IllegalArgumentException e) {
            throw new RequestReader.BadRequest(OpenAiError.invalidRequest(e.getMessage(), null), null);
        }
        ObjectNode tree = tree(form);
        RequestReader.checkModel(tree.get("model"));
        if (endpoint.equals(IMAGES_EDITS)) {
            checkEdit(form, tree);
        } else {
            checkAudio(endpoint, form, tree);
        }
        if (tree.path("stream").asBoolean(false)) {
            // A streamed transcription or edit carries its usage in events the edge does not read yet (ADR 0088).
            throw new RequestReader.BadRequest(OpenAiError.invalidRequest("stream is not supported for " + endpoint
                    + " at this edge; send the request without stream.", "stream"), "stream_not_supported");
        }
        tree.put(UPLOAD_BYTES, form.fileBytes());
        return new RequestReader.ProxyRequest(body, tree, tree.get("model").asText(), false, contentType);
    }

    private static void checkAudio(String endpoint, MultipartForm.Form form, ObjectNode tree) throws RequestReader.BadRequest {
        if (form.filesNamed("file") != 1) {
            throw new RequestReader.BadRequest(OpenAiError.invalidRequest("Provide exactly one audio file in the `file` field.",
                    "file"), "missing_file");
        }
        String format = tree.path("response_format").asText("json");
        if (!BILLABLE_FORMATS.get(endpoint).contains(format)) {
            throw new RequestReader.BadRequest(OpenAiError.invalidRequest("response_format " + (format.length() > 32 ? "(too long)" : format)
                    + " is not supported for " + endpoint + " at this edge: its answer does not report what the call is billed by;"
                    + " use " + String.join(" or ", BILLABLE_FORMATS.get(endpoint).stream().sorted().toList()) + ".",
                    "response_format"), "response_format_not_billable");
        }
    }

    private static void checkEdit(MultipartForm.Form form, ObjectNode tree) throws RequestReader.BadRequest {
        long images = form.filesNamed("image", "image[]");
        if (images < 1 || images > MAX_EDIT_IMAGES) {
            throw new RequestReader.BadRequest(OpenAiError.invalidRequest("Provide 1 to " + MAX_EDIT_IMAGES
                    + " images in the `image` field.", "image"), images < 1 ? "missing_file" : null);
        }
        String problem = ImageEstimate.parameterProblem(tree);
        if (problem != null) {
            throw new RequestReader.BadRequest(OpenAiError.invalidRequest(problem, "n"), null);
        }
    }

    /** The text fields as a JSON object: strings, {@code n} as a number when it is one, {@code name[]} as arrays. */
    private static ObjectNode tree(MultipartForm.Form form) {
        ObjectNode tree = JsonNodeFactory.instance.objectNode();
        for (Map.Entry<String, List<String>> field : form.fields().entrySet()) {
            String name = field.getKey();
            if (name.endsWith("[]")) {
                field.getValue().forEach(tree.withArray(name.substring(0, name.length() - 2))::add);
            } else if (name.equals("n") && field.getValue().getFirst().matches("[0-9]{1,9}")) {
                tree.put(name, Integer.parseInt(field.getValue().getFirst()));
            } else {
                tree.put(name, field.getValue().getFirst());
            }
        }
        return tree;
    }
}
