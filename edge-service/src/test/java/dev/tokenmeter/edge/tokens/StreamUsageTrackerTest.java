package dev.tokenmeter.edge.tokens;

import dev.tokenmeter.edge.pricing.TokenUsage;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class StreamUsageTrackerTest {

    private static final TokenCounter COUNTER = new TokenCounter();

    @Test
    void chatChunksCountDeltasAndPickUpTheUsageChunk() {
        StreamUsageTracker t = new StreamUsageTracker("gpt-4o-mini", COUNTER);
        t.onLine("data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}");
        t.onLine("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}],\"usage\":null}");
        t.onLine("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"}}],\"usage\":null}");
        t.onLine(": keep-alive comment");
        assertThat(t.reportedUsage()).isEmpty();
        assertThat(t.streamedCompletionTokens()).isEqualTo(2);
        t.onLine("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":4},"
                + "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}");
        t.onLine("data: [DONE]");
        assertThat(t.reportedUsage()).contains(new TokenUsage(12, 4, 2, 0));
    }

    @Test
    void responsesEventsAndBrokenLinesAreHandled() {
        StreamUsageTracker t = new StreamUsageTracker("gpt-5", COUNTER);
        t.onLine("event: response.output_text.delta");
        t.onLine("data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}");
        t.onLine("data: {not json");
        t.onLine("data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":0},"
                + "\"output_tokens\":8,\"output_tokens_details\":{\"reasoning_tokens\":2}}}}");
        assertThat(t.streamedCompletionTokens()).isEqualTo(1);
        assertThat(t.reportedUsage()).contains(new TokenUsage(9, 0, 8, 2));
    }

    @Test
    void encodingFollowsTheModelFamily() {
        assertThat(TokenCounter.encodingName("gpt-4o-mini")).isEqualTo("o200k_base");
        assertThat(TokenCounter.encodingName("gpt-4.1-nano")).isEqualTo("o200k_base");
        assertThat(TokenCounter.encodingName("gpt-5")).isEqualTo("o200k_base");
        assertThat(TokenCounter.encodingName("o3")).isEqualTo("o200k_base");
        assertThat(TokenCounter.encodingName("o4-mini")).isEqualTo("o200k_base");
        assertThat(TokenCounter.encodingName("gpt-4-turbo")).isEqualTo("cl100k_base");
        assertThat(TokenCounter.encodingName("text-embedding-3-small")).isEqualTo("cl100k_base");
    }
}
