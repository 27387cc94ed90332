package dev.tokenmeter.testkit.openai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The deterministic usage formula, without a server. */
class FakeCallTest {

    @Test
    void replyOfKWordsIsKTokensSoStreamedDeltasEqualVisibleCompletionTokens() {
        for (int k = 0; k <= 48; k++) {
            String text = String.join("", FakeCall.replyWords(k));
            assertThat(FakeCall.countTokens(text)).as("tokens of a %d-word reply", k).isEqualTo(k);
        }
    }

    @Test
    void chatPromptIsConversationOverheadPlusPerMessageOverheadPlusContentTokens() {
        String body = """
                {"model":"gpt-4o-mini","messages":[
                  {"role":"system","content":"You are terse."},
                  {"role":"user","content":[{"type":"text","text":"Hello "},{"type":"text","text":"there"}]}]}""";
        long expected = 3 + 4 + FakeCall.countTokens("You are terse.") + 4 + FakeCall.countTokens("Hello there");

        Usage usage = FakeOpenAi.usageFor("/v1/chat/completions", body);

        assertThat(usage).isEqualTo(new Usage(expected, 0, 16, 0));
        assertThat(expected).isGreaterThan(11);
    }

    @Test
    void maxTokensCapsCompletionAndDirectiveRaisesIt() {
        assertThat(FakeOpenAi.usageFor("chat/completions",
                "{\"model\":\"gpt-4o\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}").completionTokens())
                .isEqualTo(5);
        assertThat(FakeOpenAi.usageFor("chat/completions",
                "{\"model\":\"gpt-4o\",\"max_completion_tokens\":7,\"max_tokens\":3,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
                .completionTokens()).isEqualTo(7);
        assertThat(FakeOpenAi.usageFor("chat/completions",
                "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi [[fake:completion=40]]\"}]}").completionTokens())
                .isEqualTo(40);
    }

    @Test
    void reasoningModelsSpendAQuarterOfCompletionOnReasoning() {
        Usage usage = FakeOpenAi.usageFor("/v1/chat/completions",
                "{\"model\":\"gpt-5-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"think [[fake:completion=40]]\"}]}");
        assertThat(usage.completionTokens()).isEqualTo(40);
        assertThat(usage.reasoningTokens()).isEqualTo(10);
        assertThat(FakeOpenAi.usageFor("/v1/responses", "{\"model\":\"o4-mini\",\"input\":\"x\"}").reasoningTokens()).isEqualTo(4);
    }

    @Test
    void cachedDirectiveIsClampedToThePrompt() {
        Usage usage = FakeOpenAi.usageFor("/v1/chat/completions",
                "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"[[fake:cached=100000]]\"}]}");
        assertThat(usage.cachedPromptTokens()).isEqualTo(usage.promptTokens()).isPositive();
    }

    @Test
    void directivesAreReadFromTheLastUserMessageOnly() {
        Usage usage = FakeOpenAi.usageFor("/v1/chat/completions", """
                {"model":"gpt-4o","messages":[{"role":"user","content":"[[fake:completion=30]]"},
                {"role":"assistant","content":"ok"},{"role":"user","content":"plain"}]}""");
        assertThat(usage.completionTokens()).isEqualTo(16);
    }

    @Test
    void embeddingsAndCompletionsCountTheirInputs() {
        assertThat(FakeOpenAi.usageFor("/v1/embeddings", "{\"model\":\"text-embedding-3-small\",\"input\":[\"one two\",\"three\"]}"))
                .isEqualTo(new Usage(FakeCall.countTokens("one two") + FakeCall.countTokens("three"), 0, 0, 0));
        assertThat(FakeOpenAi.usageFor("/v1/embeddings", "{\"model\":\"text-embedding-3-small\",\"input\":[1,2,3]}").promptTokens())
                .isEqualTo(3);
        assertThat(FakeOpenAi.usageFor("/v1/completions", "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"Say this\",\"max_tokens\":7}"))
                .isEqualTo(new Usage(FakeCall.countTokens("Say this"), 0, 7, 0));
    }

    @Test
    void responsesCountInstructionsAndInputItems() {
        Usage usage = FakeOpenAi.usageFor("/v1/responses", """
                {"model":"gpt-4.1","instructions":"Be brief.","max_output_tokens":9,
                 "input":[{"role":"user","content":[{"type":"input_text","text":"Hi there"}]}]}""");
        assertThat(usage).isEqualTo(new Usage(3 + 4 + FakeCall.countTokens("Be brief.") + 4 + FakeCall.countTokens("Hi there"), 0, 9, 0));
    }

    @Test
    void badBodiesAndDirectivesAreRejectedWithAReason() {
        assertThatThrownBy(() -> FakeOpenAi.usageFor("/v1/chat/completions", "{\"model\":\"gpt-4o\"}"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("messages");
        assertThatThrownBy(() -> FakeOpenAi.usageFor("/v1/chat/completions",
                "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"[[fake:latency=soon]]\"}]}"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("latency");
        assertThatThrownBy(() -> FakeOpenAi.usageFor("/v1/nope", "{}")).isInstanceOf(IllegalArgumentException.class);
    }
}
