package dev.tokenmeter.edge.tokens;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.pricing.TokenUsage;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class UsageParserTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static Optional<TokenUsage> streamed(String body) throws IOException {
        return UsageParser.fromResponseBytes(body.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void readsTheImageTokenUsageObject_imageInputTokensInsidePrompt() throws IOException {
        // gpt-image-1's /v1/images/edits answer (ADR 0085): the b64 image is skipped, the split is kept.
        assertThat(streamed("""
                {"created":1,"data":[{"b64_json":"iVBORw0KGgo="}],
                 "usage":{"total_tokens":4260,"input_tokens":100,"output_tokens":4160,
                          "input_tokens_details":{"text_tokens":35,"image_tokens":65}}}"""))
                .contains(new TokenUsage(100, 0, 4160, 0, 65));
        // An upstream that claims more image tokens than input tokens is held to the input tokens.
        assertThat(streamed("""
                {"usage":{"input_tokens":10,"output_tokens":1,"input_tokens_details":{"image_tokens":99}}}"""))
                .contains(new TokenUsage(10, 0, 1, 0, 10));
    }

    @Test
    void readsTranscriptionUsage_audioTokensInsidePrompt_andWhisperSecondsRoundedHalfUp() throws IOException { // ADR 0088
        assertThat(streamed("""
                {"text":"hi","usage":{"type":"tokens","input_tokens":120,"input_token_details":{"text_tokens":20,
                 "audio_tokens":100},"output_tokens":7,"total_tokens":127}}"""))
                .contains(new TokenUsage(120, 0, 7, 0, 100));
        assertThat(streamed("{\"text\":\"hi\",\"usage\":{\"type\":\"duration\",\"seconds\":12.5}}")).contains(new TokenUsage(13, 0, 0, 0));
        assertThat(streamed("{\"text\":\"hi\",\"usage\":{\"type\":\"duration\",\"seconds\":12.49}}")).contains(new TokenUsage(12, 0, 0, 0));
        assertThat(streamed("{\"text\":\"hi\",\"usage\":{\"type\":\"duration\",\"seconds\":0.4}}")).contains(new TokenUsage(0, 0, 0, 0));
        // A translation's verbose_json: no usage, its duration bills it; a usage object wins over it.
        assertThat(streamed("{\"task\":\"translate\",\"duration\":7.5,\"text\":\"x\"}")).contains(new TokenUsage(8, 0, 0, 0));
        assertThat(streamed("{\"duration\":99,\"usage\":{\"type\":\"duration\",\"seconds\":3}}")).contains(new TokenUsage(3, 0, 0, 0));
        // Not believed: negative, not a number, beyond 100 days.
        assertThat(streamed("{\"usage\":{\"type\":\"duration\",\"seconds\":-1}}")).isEmpty();
        assertThat(streamed("{\"usage\":{\"type\":\"duration\",\"seconds\":\"9\"}}")).isEmpty();
        assertThat(streamed("{\"duration\":1e12,\"text\":\"x\"}")).isEmpty();
    }

    @Test
    void readsChatAndResponsesUsage() throws IOException {
        assertThat(streamed("""
                {"id":"c1","choices":[{"message":{"content":"hi","usage":{"prompt_tokens":99}}}],
                 "usage":{"prompt_tokens":12,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4},
                          "completion_tokens_details":{"reasoning_tokens":2}}}"""))
                .contains(new TokenUsage(12, 4, 5, 2));
        assertThat(streamed("""
                {"response":{"id":"r","output":[{"text":"x"}],"usage":{"input_tokens":7,"output_tokens":3}}}"""))
                .contains(new TokenUsage(7, 0, 3, 0));
    }

    @Test
    void readsTheAnsweredModelAndServiceTier() throws IOException { // issue 16
        UsageParser.Answer chat = UsageParser.answerOf("""
                {"id":"c1","model":"gpt-4o-mini-2024-07-18","choices":[{"message":{"content":"hi","model":"x"}}],
                 "usage":{"prompt_tokens":12,"completion_tokens":5},"service_tier":"flex"}""".getBytes(StandardCharsets.UTF_8));
        assertThat(chat).isEqualTo(new UsageParser.Answer(new TokenUsage(12, 0, 5, 0), "gpt-4o-mini-2024-07-18", "flex"));
        UsageParser.Answer responses = UsageParser.answerOf("""
                {"type":"x","response":{"model":"o3-2025-04-16","service_tier":"priority","model":{"odd":1},
                 "usage":{"input_tokens":7,"output_tokens":3}}}""".getBytes(StandardCharsets.UTF_8));
        assertThat(responses).as("a non-string member counts as absent, the last one wins")
                .isEqualTo(new UsageParser.Answer(new TokenUsage(7, 0, 3, 0), null, "priority"));
        UsageParser.Answer embeddings = UsageParser.answerOf("""
                {"data":[],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}"""
                .getBytes(StandardCharsets.UTF_8));
        assertThat(embeddings.serviceTier()).isNull();
        assertThat(embeddings.model()).isEqualTo("text-embedding-3-small");
    }

    /** The streaming reader answers exactly what the tree reader answers, for every shape the proxy may get. */
    @ParameterizedTest
    @ValueSource(strings = {
            "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}",
            "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4},\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":1}}",
            "{\"usage\":{\"prompt_tokens\":3},\"usage\":null}",
            "{\"usage\":\"none\",\"response\":{\"usage\":{\"input_tokens\":2,\"output_tokens\":9}}}",
            "{\"response\":{\"usage\":{\"input_tokens\":2,\"output_tokens\":9}},\"response\":\"gone\"}",
            "{\"response\":[{\"usage\":{\"input_tokens\":2}}]}",
            "{\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":9}}}",
            "{\"usage\":{\"input_tokens\":10,\"output_tokens\":2,\"output_tokens_details\":{\"reasoning_tokens\":7}}}",
            "{\"data\":[{\"embedding\":[0.1,0.2]}],\"usage\":{\"prompt_tokens\":5,\"total_tokens\":5}}",
            "{}",
            "[1,2]",
            "\"text\"",
            "",
            "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}} trailing",
    })
    void agreesWithTheTreeReader(String body) throws IOException {
        Optional<TokenUsage> tree = UsageParser.fromResponseBody(JSON.readTree(body));
        assertThat(streamed(body)).isEqualTo(tree);
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}",
            "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4},\"choices\":[{\"message\":",
            "{\"response\":{\"usage\":{\"input_tokens\":2,\"output_tokens\":9}",
            "{\"usage\":{\"prompt_tokens\":3,}}",
    })
    void aBrokenBodyFailsAsATreeParseDoes(String body) {
        assertThatThrownBy(() -> JSON.readTree(body)).isInstanceOf(IOException.class);
        assertThatThrownBy(() -> streamed(body)).isInstanceOf(IOException.class);
    }
}
