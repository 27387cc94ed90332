package dev.tokenmeter.testkit.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * The fake's Files and Batch APIs: {@code POST /v1/files} (multipart, {@code purpose=batch}), {@code GET
 * /v1/files/{id}}, {@code GET /v1/files/{id}/content}, {@code POST /v1/batches}, {@code GET /v1/batches[/{id}]},
 * {@code POST /v1/batches/{id}/cancel}, in OpenAI's wire format (file and batch objects, {@code request_counts},
 * output lines {@code {id, custom_id, response: {status_code, request_id, body}, error}}).
 *
 * <p>The life cycle runs on a compressed clock, evaluated whenever a batch is read (no background thread):
 * {@code validating} for one step, {@code in_progress} for a second, then {@code completed} (or {@code failed} when
 * validation found a bad line, or {@code expired} when the test asked for it). A cancel moves a running batch to
 * {@code cancelling}, and after one more step to {@code cancelled}, with no line answered. On completion each input
 * line is answered as the synchronous endpoint would answer it: a line whose body carries a status directive
 * ({@code "fake:status=500"} as in any other request) goes to the error file with that status instead of the
 * output file. Every answered line is counted by the Usage and Costs APIs with {@code batch = true} and the batch
 * price (half the standard price, as OpenAI's list prices are).
 */
final class FakeBatches {

    /** What a batch ends as once its run is over, unless cancelled first. */
    enum Ending { COMPLETED, EXPIRED }

    private final LongSupplier nowMillis;
    private final Duration step;
    private final UpstreamLedgerSink ledger;
    private final Map<String, StoredFile> files = new LinkedHashMap<>();
    private final Map<String, Batch> batches = new LinkedHashMap<>();
    private Ending nextEnding = Ending.COMPLETED;

    /** Where answered lines are counted (the fake's UpstreamLedger). */
    interface UpstreamLedgerSink {
        void answered(String apiKey, String projectId, FakeCall call, long epochS);
    }

    FakeBatches(LongSupplier nowMillis, Duration step, UpstreamLedgerSink ledger) {
        this.nowMillis = nowMillis;
        this.step = step;
        this.ledger = ledger;
    }

    synchronized void endNextBatchAs(Ending ending) {
        this.nextEnding = ending;
    }

    synchronized void clear() {
        files.clear();
        batches.clear();
        nextEnding = Ending.COMPLETED;
    }

    /** True when this request path is one of the Files or Batch APIs. */
    static boolean handles(String path) {
        return path.equals("/v1/files") || path.startsWith("/v1/files/")
                || path.equals("/v1/batches") || path.startsWith("/v1/batches/");
    }

    /** A response: status and either a JSON object or raw bytes (file content). */
    record Answer(int status, ObjectNode json, byte[] bytes) {
        static Answer json(int status, ObjectNode json) {
            return new Answer(status, json, null);
        }
    }

    synchronized Answer serve(String method, String path, String contentType, byte[] body, String query,
                              String apiKey, String projectId) {
        try {
            if (path.equals("/v1/files") && method.equals("POST")) {
                return Answer.json(200, upload(contentType, body, apiKey).json());
            }
            if (path.startsWith("/v1/files/") && method.equals("GET")) {
                String rest = path.substring("/v1/files/".length());
                boolean content = rest.endsWith("/content");
                String id = content ? rest.substring(0, rest.length() - "/content".length()) : rest;
                StoredFile f = files.get(id);
                if (f == null || !f.owner.equals(apiKey)) {
                    return notFound("No such File object: " + id, "id");
                }
                return content ? new Answer(200, null, f.bytes) : Answer.json(200, f.json());
            }
            if (path.equals("/v1/batches") && method.equals("POST")) {
                return create(body, apiKey, projectId);
            }
            if (path.equals("/v1/batches") && method.equals("GET")) {
                return Answer.json(200, list(query, apiKey, projectId));
            }
            if (path.startsWith("/v1/batches/")) {
                String rest = path.substring("/v1/batches/".length());
                boolean cancel = rest.endsWith("/cancel");
                String id = cancel ? rest.substring(0, rest.length() - "/cancel".length()) : rest;
                Batch b = batches.get(id);
                if (b == null || !b.owner.equals(apiKey)) {
                    return notFound("No batch found with id '" + id + "'.", null);
                }
                if (cancel && method.equals("POST")) {
                    return cancel(b, projectId);
                }
                if (!cancel && method.equals("GET")) {
                    advance(b, projectId);
                    return Answer.json(200, b.json());
                }
            }
            return notFound("Invalid URL (" + method + " " + path + ")", null);
        } catch (BadRequestException e) {
            return Answer.json(400, OpenAiWire.error(e.getMessage(), "invalid_request_error", e.param, e.code));
        }
    }

    private static Answer notFound(String message, String param) {
        return Answer.json(404, OpenAiWire.error(message, "invalid_request_error", param, null));
    }

    // ------------------------------------------------------------------ files

    private StoredFile upload(String contentType, byte[] body, String apiKey) {
        Map<String, Part> parts = Multipart.parse(contentType, body);
        Part purpose = parts.get("purpose");
        if (purpose == null) {
            throw new BadRequestException("Missing required parameter: 'purpose'.", "purpose", null);
        }
        String p = new String(purpose.bytes, StandardCharsets.UTF_8).trim();
        if (!List.of("batch", "assistants", "fine-tune", "vision", "user_data", "evals").contains(p)) {
            throw new BadRequestException("Invalid value for 'purpose': '" + p + "'.", "purpose", null);
        }
        Part file = parts.get("file");
        if (file == null || file.filename == null) {
            throw new BadRequestException("Missing required parameter: 'file'.", "file", null);
        }
        return store(file.filename, p, file.bytes, apiKey);
    }

    private StoredFile store(String filename, String purpose, byte[] bytes, String owner) {
        StoredFile f = new StoredFile(OpenAiWire.randomId("file-", 24),
                filename, purpose, bytes, nowMillis.getAsLong() / 1000, owner);
        files.put(f.id, f);
        return f;
    }

    private record StoredFile(String id, String filename, String purpose, byte[] bytes, long createdAt, String owner) {
        ObjectNode json() {
            ObjectNode o = OpenAiWire.objectNode();
            o.put("id", id);
            o.put("object", "file");
            o.put("bytes", bytes.length);
            o.put("created_at", createdAt);
            o.put("filename", filename);
            o.put("purpose", purpose);
            o.put("status", "processed");
            o.putNull("status_details");
            return o;
        }
    }

    // ------------------------------------------------------------------ batches

    private Answer create(byte[] body, String apiKey, String projectId) {
        JsonNode json;
        try {
            json = OpenAiWire.JSON.readTree(body);
        } catch (IOException e) {
            json = null;
        }
        if (json == null || !json.isObject()) {
            throw new BadRequestException("We could not parse the JSON body of your request.", null, null);
        }
        String inputFileId = json.path("input_file_id").asText("");
        String endpoint = json.path("endpoint").asText("");
        String window = json.path("completion_window").asText("");
        if (inputFileId.isEmpty()) {
            throw new BadRequestException("Missing required parameter: 'input_file_id'.", "input_file_id", null);
        }
        if (!List.of("/v1/chat/completions", "/v1/embeddings", "/v1/completions").contains(endpoint)) {
            throw new BadRequestException("Invalid value for 'endpoint': '" + endpoint + "'.", "endpoint", null);
        }
        if (!window.equals("24h")) {
            throw new BadRequestException("Invalid value for 'completion_window': '" + window + "'. Supported values are: '24h'.",
                    "completion_window", null);
        }
        StoredFile input = files.get(inputFileId);
        if (input == null || !input.owner.equals(apiKey)) {
            return notFound("No such File object: " + inputFileId, "input_file_id");
        }
        if (!input.purpose.equals("batch")) {
            throw new BadRequestException("The input file must have purpose 'batch'.", "input_file_id", null);
        }
        Batch b = new Batch(OpenAiWire.randomId("batch_", 24), apiKey,
                endpoint, input, nowMillis.getAsLong(), nextEnding, json.get("metadata"));
        nextEnding = Ending.COMPLETED;
        b.validate();
        batches.put(b.id, b);
        return Answer.json(200, b.json());
    }

    private Answer cancel(Batch b, String projectId) {
        advance(b, projectId);
        if (!b.status.equals("validating") && !b.status.equals("in_progress")) {
            throw new BadRequestException("Cannot cancel a batch with status '" + b.status + "'.", null, null);
        }
        b.status = "cancelling";
        b.cancellingAtMs = nowMillis.getAsLong();
        return Answer.json(200, b.json());
    }

    private ObjectNode list(String rawQuery, String apiKey, String projectId) {
        UpstreamLedger.Query q = new UpstreamLedger.Query(rawQuery);
        int limit = 20;
        if (q.one("limit") != null) {
            try {
                limit = Integer.parseInt(q.one("limit"));
            } catch (NumberFormatException e) {
                limit = -1;
            }
            if (limit < 1 || limit > 100) {
                throw new BadRequestException("Invalid 'limit': must be 1..100.", "limit", null);
            }
        }
        String after = q.one("after");
        List<Batch> mine = new ArrayList<>();
        for (Batch b : batches.values()) {
            if (b.owner.equals(apiKey)) {
                mine.add(0, b); // newest first, as OpenAI lists
            }
        }
        int from = 0;
        if (after != null) {
            for (int i = 0; i < mine.size(); i++) {
                if (mine.get(i).id.equals(after)) {
                    from = i + 1;
                }
            }
        }
        ObjectNode page = OpenAiWire.objectNode();
        page.put("object", "list");
        ArrayNode data = page.putArray("data");
        int to = Math.min(mine.size(), from + limit);
        for (int i = from; i < to; i++) {
            advance(mine.get(i), projectId);
            data.add(mine.get(i).json());
        }
        if (from < to) {
            page.put("first_id", mine.get(from).id);
            page.put("last_id", mine.get(to - 1).id);
        } else {
            page.putNull("first_id");
            page.putNull("last_id");
        }
        page.put("has_more", to < mine.size());
        return page;
    }

    /** Moves the batch along the compressed clock; answering its lines when its run is over. */
    private void advance(Batch b, String projectId) {
        long now = nowMillis.getAsLong();
        long stepMs = step.toMillis();
        switch (b.status) {
            case "validating" -> {
                if (now - b.createdAtMs >= stepMs) {
                    b.status = "in_progress";
                    b.inProgressAtMs = b.createdAtMs + stepMs;
                    advance(b, projectId);
                }
            }
            case "in_progress" -> {
                if (now - b.inProgressAtMs >= stepMs) {
                    b.finalizingAtMs = b.inProgressAtMs + stepMs;
                    finish(b, projectId, b.finalizingAtMs);
                }
            }
            case "cancelling" -> {
                if (now - b.cancellingAtMs >= stepMs) {
                    b.status = "cancelled";
                    b.cancelledAtMs = b.cancellingAtMs + stepMs;
                }
            }
            default -> {
            }
        }
    }

    private void finish(Batch b, String projectId, long atMs) {
        StringBuilder out = new StringBuilder();
        StringBuilder err = new StringBuilder();
        for (Line line : b.lines) {
            ObjectNode o = OpenAiWire.objectNode();
            o.put("id", OpenAiWire.randomId("batch_req_", 24));
            o.put("custom_id", line.customId);
            if (b.ending == Ending.EXPIRED) {
                o.putNull("response");
                ObjectNode e = o.putObject("error");
                e.put("code", "batch_expired");
                e.put("message", "This request could not be executed before the completion window expired.");
                err.append(o).append('\n');
                b.failed++;
                continue;
            }
            ObjectNode response = o.putObject("response");
            response.put("request_id", OpenAiWire.requestId());
            Integer status = line.call.directives().status();
            if (status != null) {
                response.put("status_code", status);
                response.set("body", OpenAiWire.errorForStatus(status));
                o.putNull("error");
                err.append(o).append('\n');
                b.failed++;
                continue;
            }
            response.put("status_code", 200);
            long created = atMs / 1000;
            response.set("body", switch (line.call.endpoint()) {
                case CHAT_COMPLETIONS -> OpenAiWire.chatCompletion(OpenAiWire.idFor(Endpoint.CHAT_COMPLETIONS), created, line.call);
                case COMPLETIONS -> OpenAiWire.completion(OpenAiWire.idFor(Endpoint.COMPLETIONS), created, line.call);
                default -> OpenAiWire.embeddings(line.call, line.body);
            });
            o.putNull("error");
            out.append(o).append('\n');
            b.completed++;
            ledger.answered(b.owner, projectId, line.call, created);
        }
        if (!out.isEmpty()) {
            b.outputFileId = store(b.id + "_output.jsonl", "batch_output", out.toString().getBytes(StandardCharsets.UTF_8), b.owner).id;
        }
        if (!err.isEmpty()) {
            b.errorFileId = store(b.id + "_error.jsonl", "batch_output", err.toString().getBytes(StandardCharsets.UTF_8), b.owner).id;
        }
        if (b.ending == Ending.EXPIRED) {
            b.status = "expired";
            b.expiredAtMs = atMs;
        } else {
            b.status = "completed";
            b.completedAtMs = atMs;
        }
    }

    private record Line(String customId, FakeCall call, JsonNode body) {
    }

    private static final class Batch {
        final String id;
        final String owner;
        final String endpoint;
        final StoredFile input;
        final long createdAtMs;
        final Ending ending;
        final JsonNode metadata;
        final List<Line> lines = new ArrayList<>();
        ArrayNode errors;
        String status = "validating";
        long inProgressAtMs;
        long finalizingAtMs;
        long completedAtMs;
        long failedAtMs;
        long expiredAtMs;
        long cancellingAtMs;
        long cancelledAtMs;
        int completed;
        int failed;
        String outputFileId;
        String errorFileId;

        Batch(String id, String owner, String endpoint, StoredFile input, long createdAtMs, Ending ending, JsonNode metadata) {
            this.id = id;
            this.owner = owner;
            this.endpoint = endpoint;
            this.input = input;
            this.createdAtMs = createdAtMs;
            this.ending = ending;
            this.metadata = metadata;
        }

        /** Parses every line; any bad line fails the whole batch (as OpenAI's validation does), with its errors. */
        void validate() {
            String text = new String(input.bytes, StandardCharsets.UTF_8);
            String[] raw = text.split("\n", -1);
            java.util.Set<String> seen = new java.util.HashSet<>();
            errors = OpenAiWire.JSON.createArrayNode();
            for (int i = 0; i < raw.length; i++) {
                if (raw[i].isBlank()) {
                    continue;
                }
                String problem = null;
                try {
                    JsonNode line = OpenAiWire.JSON.readTree(raw[i]);
                    String customId = line.path("custom_id").asText("");
                    if (customId.isEmpty()) {
                        problem = "Missing required parameter: 'custom_id'.";
                    } else if (!seen.add(customId)) {
                        problem = "The custom_id for this request is a duplicate of another request.";
                    } else if (!line.path("method").asText("").equals("POST")) {
                        problem = "Invalid value for 'method': only POST is supported.";
                    } else if (!line.path("url").asText("").equals(endpoint)) {
                        problem = "The URL provided for this request does not match the batch endpoint.";
                    } else if (!line.path("body").isObject()) {
                        problem = "Missing required parameter: 'body'.";
                    } else {
                        lines.add(new Line(customId, FakeCall.parse(Endpoint.forPath(endpoint), line.get("body")), line.get("body")));
                    }
                } catch (IOException e) {
                    problem = "Invalid JSON in line.";
                } catch (BadRequestException e) {
                    problem = e.getMessage();
                }
                if (problem != null) {
                    ObjectNode err = errors.addObject();
                    err.put("code", "invalid_request");
                    err.put("message", problem);
                    err.putNull("param");
                    err.put("line", i + 1);
                }
            }
            if (lines.isEmpty() && errors.isEmpty()) {
                ObjectNode err = errors.addObject();
                err.put("code", "empty_file");
                err.put("message", "The batch input file is empty.");
                err.putNull("param");
                err.putNull("line");
            }
            if (!errors.isEmpty()) {
                status = "failed";
                failedAtMs = createdAtMs;
                lines.clear();
            }
        }

        ObjectNode json() {
            ObjectNode o = OpenAiWire.objectNode();
            o.put("id", id);
            o.put("object", "batch");
            o.put("endpoint", endpoint);
            if (errors.isEmpty()) {
                o.putNull("errors");
            } else {
                ObjectNode e = o.putObject("errors");
                e.put("object", "list");
                e.set("data", errors);
            }
            o.put("input_file_id", input.id);
            o.put("completion_window", "24h");
            o.put("status", status);
            putOrNull(o, "output_file_id", outputFileId);
            putOrNull(o, "error_file_id", errorFileId);
            o.put("created_at", createdAtMs / 1000);
            seconds(o, "in_progress_at", inProgressAtMs);
            o.put("expires_at", createdAtMs / 1000 + 86_400);
            seconds(o, "finalizing_at", finalizingAtMs);
            seconds(o, "completed_at", completedAtMs);
            seconds(o, "failed_at", failedAtMs);
            seconds(o, "expired_at", expiredAtMs);
            seconds(o, "cancelling_at", cancellingAtMs);
            seconds(o, "cancelled_at", cancelledAtMs);
            ObjectNode counts = o.putObject("request_counts");
            counts.put("total", status.equals("failed") ? 0 : lines.size());
            counts.put("completed", completed);
            counts.put("failed", failed);
            if (metadata == null || metadata.isNull()) {
                o.putNull("metadata");
            } else {
                o.set("metadata", metadata);
            }
            return o;
        }

        private static void putOrNull(ObjectNode o, String field, String value) {
            if (value == null) {
                o.putNull(field);
            } else {
                o.put(field, value);
            }
        }

        private static void seconds(ObjectNode o, String field, long epochMs) {
            if (epochMs == 0) {
                o.putNull(field);
            } else {
                o.put(field, epochMs / 1000);
            }
        }
    }

    // ------------------------------------------------------------------ multipart

    private record Part(String filename, byte[] bytes) {
    }

    /** A small multipart/form-data reader: enough for the Files API's two fields. */
    private static final class Multipart {
        static Map<String, Part> parse(String contentType, byte[] body) {
            String boundary = null;
            if (contentType != null && contentType.toLowerCase(Locale.ROOT).startsWith("multipart/form-data")) {
                for (String param : contentType.split(";")) {
                    String t = param.trim();
                    if (t.toLowerCase(Locale.ROOT).startsWith("boundary=")) {
                        boundary = t.substring("boundary=".length()).replace("\"", "");
                    }
                }
            }
            if (boundary == null) {
                throw new BadRequestException("The request must be multipart/form-data with a boundary.", null, null);
            }
            byte[] delimiter = ("--" + boundary).getBytes(StandardCharsets.ISO_8859_1);
            Map<String, Part> parts = new LinkedHashMap<>();
            int at = indexOf(body, delimiter, 0);
            while (at >= 0) {
                int start = at + delimiter.length;
                if (start + 1 < body.length && body[start] == '-' && body[start + 1] == '-') {
                    break;
                }
                start += 2; // CRLF
                int headersEnd = indexOf(body, "\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1), start);
                int next = indexOf(body, delimiter, start);
                if (headersEnd < 0 || next < 0 || headersEnd > next) {
                    throw new BadRequestException("Malformed multipart body.", null, null);
                }
                String headers = new String(body, start, headersEnd - start, StandardCharsets.UTF_8);
                int contentStart = headersEnd + 4;
                int contentEnd = next - 2; // CRLF before the delimiter
                byte[] content = java.util.Arrays.copyOfRange(body, contentStart, Math.max(contentStart, contentEnd));
                String name = param(headers, "name");
                if (name != null) {
                    parts.put(name, new Part(param(headers, "filename"), content));
                }
                at = next;
            }
            return parts;
        }

        private static String param(String headers, String key) {
            for (String line : headers.split("\r\n")) {
                if (!line.toLowerCase(Locale.ROOT).startsWith("content-disposition:")) {
                    continue;
                }
                for (String piece : line.split(";")) {
                    String t = piece.trim();
                    if (t.startsWith(key + "=")) {
                        return t.substring(key.length() + 1).replace("\"", "");
                    }
                }
            }
            return null;
        }

        private static int indexOf(byte[] haystack, byte[] needle, int from) {
            outer:
            for (int i = from; i <= haystack.length - needle.length; i++) {
                for (int j = 0; j < needle.length; j++) {
                    if (haystack[i + j] != needle[j]) {
                        continue outer;
                    }
                }
                return i;
            }
            return -1;
        }
    }
}
