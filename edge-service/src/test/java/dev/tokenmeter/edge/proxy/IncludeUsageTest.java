package dev.tokenmeter.edge.proxy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;

class IncludeUsageTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static String rewrite(String endpoint, String body) throws Exception {
        byte[] original = body.getBytes(StandardCharsets.UTF_8);
        return new String(UpstreamExchange.withIncludeUsage(endpoint, (ObjectNode) JSON.readTree(original), original), StandardCharsets.UTF_8);
    }

    @Test
    void addsIncludeUsageAndKeepsEverythingElse() throws Exception {
        String out = rewrite("/v1/chat/completions", "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"foo\":1},\"temperature\":0.2}");
        assertThat(JSON.readTree(out)).isEqualTo(JSON.readTree(
                "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"foo\":1,\"include_usage\":true},\"temperature\":0.2}"));
    }

    @Test
    void leavesBodiesThatAlreadyAskForUsageAndResponsesByteForByte() throws Exception {
        String asks = "{ \"model\":\"gpt-4o\", \"stream\":true, \"stream_options\":{\"include_usage\":true} }";
        assertThat(rewrite("/v1/chat/completions", asks)).isEqualTo(asks);
        String responses = "{ \"model\":\"gpt-4o\", \"stream\":true }";
        assertThat(rewrite("/v1/responses", responses)).isEqualTo(responses);
    }
}
