package dev.tokenmeter.testkit.openai;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The fake's multipart endpoints (ADR 0088): {@code /v1/audio/transcriptions}, {@code /translations} and
 * {@code /v1/images/edits}, answered with OpenAI's shapes and a usage derived from the upload so tests can predict
 * it. A file is measured in characters of the body as the fake reads it (UTF-8), so tests send ASCII "audio".
 *
 * <ul>
 *   <li>gpt-4o(-mini)-transcribe: usage {@code type: tokens}; audio tokens = ceil(file chars / 32), text tokens =
 *       the prompt's o200k tokens, output tokens = audio tokens / 4 + 1.</li>
 *   <li>whisper-1: {@code seconds} = file chars / 1000 (a decimal such as 12.5); a transcription reports usage
 *       {@code type: duration}, a translation only its {@code duration} (verbose_json) — as OpenAI's answers do.</li>
 *   <li>gpt-image-1 edits: a generation's usage (prompt tokens, output by quality and size) plus
 *       {@value #IMAGE_TOKENS_PER_INPUT} image input tokens per input image.</li>
 * </ul>
 */
final class FakeUploads {

    static final long IMAGE_TOKENS_PER_INPUT = 194;
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    /** Text fields by name (the last value of a repeated one), file characters by field name, and the file count. */
    record Upload(Map<String, String> fields, Map<String, Long> fileChars, int files) {
        long chars(String name) {
            return fileChars.getOrDefault(name, 0L);
        }
    }

    private FakeUploads() {
    }

    static Upload parse(String contentType, String body) {
        String boundary = null;
        for (String p : (contentType == null ? "" : contentType).split(";")) {
            String t = p.trim();
            if (t.regionMatches(true, 0, "boundary=", 0, 9)) {
                boundary = t.substring(9).replace("\"", "");
            }
        }
        if (contentType == null || !contentType.toLowerCase(java.util.Locale.ROOT).startsWith("multipart/form-data") || boundary == null) {
            throw new BadRequestException("Expected multipart/form-data with a boundary.", null, null);
        }
        Map<String, String> fields = new LinkedHashMap<>();
        Map<String, Long> files = new LinkedHashMap<>();
        int count = 0;
        String[] parts = body.split("--" + java.util.regex.Pattern.quote(boundary), -1);
        for (int i = 1; i < parts.length; i++) {
            String part = parts[i];
            if (part.startsWith("--")) {
                break;
            }
            int headerEnd = part.indexOf("\r\n\r\n");
            if (headerEnd < 0) {
                throw new BadRequestException("Malformed multipart body.", null, null);
            }
            String headers = part.substring(0, headerEnd);
            String content = part.substring(headerEnd + 4, Math.max(headerEnd + 4, part.length() - 2)); // the CRLF before the delimiter
            String name = param(headers, "name");
            if (name == null) {
                throw new BadRequestException("Malformed multipart body: a part without a name.", null, null);
            }
            if (param(headers, "filename") != null) {
                files.merge(name, (long) content.length(), Long::sum);
                count++;
            } else {
                fields.put(name, content);
            }
        }
        if (!fields.containsKey("model")) {
            throw new BadRequestException("you must provide a model parameter", "model", null);
        }
        return new Upload(fields, files, count);
    }

    private static String param(String headers, String key) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("[; ]" + key + "=\"([^\"]*)\"").matcher(headers);
        return m.find() ? m.group(1) : null;
    }

    /** The whisper-1 seconds of an upload: file characters / 1000, as a decimal. */
    static java.math.BigDecimal seconds(Upload u) {
        return java.math.BigDecimal.valueOf(u.chars("file")).movePointLeft(3);
    }

    static ObjectNode transcription(Upload u, boolean translation) {
        String model = u.fields().get("model");
        String format = u.fields().getOrDefault("response_format", "json");
        ObjectNode root = F.objectNode();
        if (format.equals("verbose_json")) {
            root.put("task", translation ? "translate" : "transcribe");
            root.put("language", "english");
            root.put("duration", seconds(u));
        }
        root.put("text", "A fake transcript of " + u.chars("file") + " bytes of audio.");
        if (format.equals("verbose_json")) {
            root.putArray("segments");
        }
        if (model.contains("transcribe")) {
            long audio = Math.ceilDiv(u.chars("file"), 32L);
            long text = FakeCall.countTokens(u.fields().getOrDefault("prompt", ""));
            long output = audio / 4 + 1;
            ObjectNode usage = root.putObject("usage");
            usage.put("type", "tokens");
            usage.put("input_tokens", audio + text);
            ObjectNode details = usage.putObject("input_token_details");
            details.put("text_tokens", text);
            details.put("audio_tokens", audio);
            usage.put("output_tokens", output);
            usage.put("total_tokens", audio + text + output);
        } else if (!translation) {
            ObjectNode usage = root.putObject("usage");
            usage.put("type", "duration");
            usage.put("seconds", seconds(u));
        }
        return root;
    }

    static ObjectNode imageEdit(Upload u, long createdEpochS) {
        ObjectNode asJson = F.objectNode();
        u.fields().forEach((k, v) -> {
            if (k.equals("n") && v.matches("[0-9]+")) {
                asJson.put(k, Long.parseLong(v));
            } else {
                asJson.put(k, v);
            }
        });
        FakeCall call = FakeCall.parse(Endpoint.IMAGES_GENERATIONS, asJson);
        long images = u.chars("image") > 0 || u.chars("image[]") > 0 ? u.files() - (u.fileChars().containsKey("mask") ? 1 : 0) : 0;
        long imageTokens = images * IMAGE_TOKENS_PER_INPUT;
        Usage usage = new Usage(call.usage().promptTokens() + imageTokens, 0, call.usage().completionTokens(), 0);
        ObjectNode root = OpenAiWire.images(createdEpochS, call, asJson);
        root.set("usage", OpenAiWire.imagesUsage(usage, imageTokens));
        return root;
    }
}
