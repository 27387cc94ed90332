package dev.tokenmeter.edge.proxy.batch;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A Batch API input file ({@code purpose=batch}) read and bounded before anything goes upstream (ADR 0087): UTF-8
 * JSONL, at most {@code maxBytes} and {@code maxLines} requests, each line an object {@code {custom_id, method:
 * "POST", url, body: {...}}} with a {@code custom_id} of 1..{@value #MAX_CUSTOM_ID_CHARS} characters, unique in
 * the file, and a {@code url} the edge meters in batches. The first problem found is thrown as a
 * {@link BatchInputException} naming the line, answered 400 with OpenAI's error JSON; nothing is sent upstream.
 */
public final class BatchInput {

    /** OpenAI documents no limit; 512 keeps a custom_id (part of an event id's name) bounded. */
    public static final int MAX_CUSTOM_ID_CHARS = 512;

    /** The endpoints a batch line may call, as OpenAI's Batch API takes them and the edge prices them. */
    public static final Set<String> URLS = Set.of("/v1/chat/completions", "/v1/embeddings", "/v1/completions");

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One request of the file. */
    public record Line(int lineNumber, String customId, String url, JsonNode body) {
        /** The {@code model} the line asks for, or "" when absent. */
        public String model() {
            JsonNode m = body.get("model");
            return m != null && m.isTextual() ? m.asText() : "";
        }
    }

    private BatchInput() {
    }

    /** Every request of {@code file}, in order; throws on the first line out of bounds. */
    public static List<Line> parse(byte[] file, long maxBytes, int maxLines) {
        if (file.length > maxBytes) {
            throw new BatchInputException("The batch input file is " + file.length + " bytes; at most " + maxBytes
                    + " are accepted (MAX_BATCH_FILE_BYTES).", "file", "file_too_large");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(file)).toString();
        } catch (CharacterCodingException e) {
            throw new BatchInputException("The batch input file is not UTF-8 text.", "file", "invalid_file");
        }
        List<Line> lines = new ArrayList<>();
        Set<String> customIds = new HashSet<>();
        String[] raw = text.split("\n", -1);
        for (int i = 0; i < raw.length; i++) {
            String l = raw[i].endsWith("\r") ? raw[i].substring(0, raw[i].length() - 1) : raw[i];
            if (l.isBlank()) {
                continue;
            }
            int n = i + 1;
            if (lines.size() == maxLines) {
                throw new BatchInputException("The batch input file has more than " + maxLines
                        + " requests (MAX_BATCH_LINES).", "file", "too_many_requests_in_file");
            }
            JsonNode line;
            try {
                line = JSON.readTree(l);
            } catch (JsonProcessingException e) {
                throw bad(n, "is not valid JSON");
            }
            if (line == null || !line.isObject()) {
                throw bad(n, "is not a JSON object");
            }
            JsonNode customId = line.get("custom_id");
            if (customId == null || !customId.isTextual() || customId.asText().isEmpty()
                    || customId.asText().length() > MAX_CUSTOM_ID_CHARS) {
                throw bad(n, "needs a custom_id of 1.." + MAX_CUSTOM_ID_CHARS + " characters");
            }
            if (!customIds.add(customId.asText())) {
                throw bad(n, "repeats the custom_id of an earlier line");
            }
            JsonNode method = line.get("method");
            if (method == null || !"POST".equals(method.asText())) {
                throw bad(n, "needs method POST");
            }
            JsonNode url = line.get("url");
            if (url == null || !url.isTextual() || !URLS.contains(url.asText())) {
                throw bad(n, "has a url this edge does not meter in batches (one of " + URLS + ")");
            }
            JsonNode body = line.get("body");
            if (body == null || !body.isObject()) {
                throw bad(n, "needs a body object");
            }
            JsonNode model = body.get("model");
            if (model == null || !model.isTextual() || model.asText().isBlank()) {
                throw bad(n, "needs body.model");
            }
            lines.add(new Line(n, customId.asText(), url.asText(), body));
        }
        if (lines.isEmpty()) {
            throw new BatchInputException("The batch input file has no requests.", "file", "empty_file");
        }
        return lines;
    }

    private static BatchInputException bad(int line, String what) {
        return new BatchInputException("Line " + line + " of the batch input file " + what + ".", "file", "invalid_batch_line");
    }
}
