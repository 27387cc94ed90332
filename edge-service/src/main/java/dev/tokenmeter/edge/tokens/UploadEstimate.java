package dev.tokenmeter.edge.tokens;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * The reservation estimate of a multipart upload (ADR 0088), from the size of its files: the edge does not decode
 * audio, so it cannot know a recording's length before the upstream reports it. The answer's usage bills the call;
 * this only sizes what is reserved.
 *
 * <ul>
 *   <li>Audio billed by duration (whisper-1): {@code ceil(bytes / }{@value #AUDIO_BYTES_PER_SECOND}{@code )} seconds —
 *       16 kB/s is 128 kbit/s, a common MP3 rate; a lower bit rate is longer than estimated and is still billed in
 *       full from the answer's usage.</li>
 *   <li>Audio billed by tokens (gpt-4o(-mini)-transcribe): those seconds × {@value #AUDIO_TOKENS_PER_SECOND} audio
 *       input tokens, plus the {@code prompt}'s text tokens, and seconds × {@value #OUTPUT_TOKENS_PER_SECOND} output
 *       tokens (speech is about 3 words a second).</li>
 *   <li>Image edits: the prompt's tokens and gpt-image-1's output tokens as for generations ({@link ImageEstimate});
 *       the input images' tokens are not estimated (they are billed from the answer).</li>
 * </ul>
 */
public final class UploadEstimate {

    public static final long AUDIO_BYTES_PER_SECOND = 16_000;
    public static final long AUDIO_TOKENS_PER_SECOND = 10;
    public static final long OUTPUT_TOKENS_PER_SECOND = 5;
    /** The request tree's field with the files' total bytes (set by the edge's upload reader). */
    public static final String UPLOAD_BYTES = "tokenmeter.upload_bytes";

    private UploadEstimate() {
    }

    static RequestEstimate audio(String model, JsonNode body, TokenCounter counter) {
        long bytes = Math.max(0, body.path(UPLOAD_BYTES).asLong(0));
        long seconds = Math.max(1, Math.ceilDiv(bytes, AUDIO_BYTES_PER_SECOND));
        if (model.startsWith("whisper")) {
            return new RequestEstimate(seconds, 0);
        }
        long audioTokens = Math.multiplyExact(seconds, AUDIO_TOKENS_PER_SECOND);
        long textTokens = counter.count(model, body.path("prompt").asText(""));
        return new RequestEstimate(Math.addExact(audioTokens, textTokens), Math.multiplyExact(seconds, OUTPUT_TOKENS_PER_SECOND),
                audioTokens);
    }

    static RequestEstimate imageEdit(String model, JsonNode body, TokenCounter counter) {
        return new RequestEstimate(counter.count(model, body.path("prompt").asText("")), ImageEstimate.maxOutputTokens(body));
    }
}
