package dev.tokenmeter.edge.responsecache;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.pricing.TokenUsage;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

/** Issue 19 (ADR 0074/0075): which requests are cached, under which key, what a hit costs, the stored form. */
class ResponseCacheRulesTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonNode json(String s) throws Exception {
        return JSON.readTree(s);
    }

    @Test
    void keyOrderWhitespaceAndNumberFormDoNotSplitAnEntry_everythingElseDoes() throws Exception {
        String a = CacheKeys.key("t1", "/v1/chat/completions",
                json("{\"model\":\"m\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"));
        String b = CacheKeys.key("t1", "/v1/chat/completions",
                json("{ \"messages\": [ { \"content\": \"hi\", \"role\": \"user\" } ],\n\"temperature\": 0.00, \"model\": \"m\" }"));
        assertThat(a).isEqualTo(b).startsWith("rc:{t1}:").hasSize("rc:{t1}:".length() + 64);
        assertThat(CacheKeys.key("t2", "/v1/chat/completions", json("{\"model\":\"m\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")))
                .as("another tenant").isNotEqualTo(a).startsWith("rc:{t2}:");
        assertThat(CacheKeys.key("t1", "/v1/completions", json("{\"model\":\"m\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")))
                .as("another endpoint").isNotEqualTo(a);
        assertThat(CacheKeys.key("t1", "/v1/chat/completions", json("{\"model\":\"m\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}")))
                .as("another message").isNotEqualTo(a);
        assertThat(CacheKeys.key("t1", "/v1/chat/completions", json("{\"model\":\"m\",\"temperature\":0,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")))
                .as("streamed").isNotEqualTo(a);
        assertThat(CacheKeys.canonical(json("{\"b\":[1e2,\"x\\\"y\",null,true],\"a\":{\"d\":1.50,\"c\":\"\\n\"}}")))
                .isEqualTo("{\"a\":{\"c\":\"\\u000a\",\"d\":1.5},\"b\":[1E+2,\"x\\\"y\",null,true]}");
        assertThat(CacheKeys.canonical(json("{\"n\":1e999999999}"))).as("no billion digits").hasSizeLessThan(32);
    }

    @Test
    void onlyRequestsThatCanBeAnsweredAgainAreCacheable_unlessThePolicySaysAny() throws Exception {
        assertThat(CacheKeys.cacheable("/v1/chat/completions", json("{\"temperature\":0}"), false)).isTrue();
        assertThat(CacheKeys.cacheable("/v1/chat/completions", json("{\"temperature\":0.0}"), false)).isTrue();
        assertThat(CacheKeys.cacheable("/v1/completions", json("{\"seed\":42,\"temperature\":1}"), false)).isTrue();
        assertThat(CacheKeys.cacheable("/v1/embeddings", json("{\"input\":\"x\"}"), false)).isTrue();
        assertThat(CacheKeys.cacheable("/v1/chat/completions", json("{}"), false)).as("default temperature 1").isFalse();
        assertThat(CacheKeys.cacheable("/v1/chat/completions", json("{\"temperature\":0.2}"), false)).isFalse();
        assertThat(CacheKeys.cacheable("/v1/chat/completions", json("{\"temperature\":\"0\",\"seed\":\"1\"}"), false)).isFalse();
        assertThat(CacheKeys.cacheable("/v1/chat/completions", json("{\"temperature\":0.2}"), true)).isTrue();
        assertThat(CacheKeys.cacheable("/v1/responses", json("{\"temperature\":0}"), true)).as("server-side state").isFalse();
    }

    @Test
    void thePlanAndTheKeyDecide_andAHitIsBilledItsShareRoundedDown() {
        assertThat(new CachePolicy(null, null, false, 100).enabled()).isFalse();
        assertThat(new CachePolicy(null, 60, false, 100).enabled()).isTrue();
        assertThat(new CachePolicy("off", 60, true, 100).enabled()).isFalse();
        assertThat(new CachePolicy("off", 60, true, 100).anyRequest()).isFalse();
        assertThat(new CachePolicy("on", null, false, 100).ttl(Duration.ofMinutes(5))).isEqualTo(Duration.ofMinutes(5));
        assertThat(new CachePolicy("on", 30, false, 100).ttl(Duration.ofMinutes(5))).isEqualTo(Duration.ofSeconds(30));
        assertThat(new CachePolicy("any", null, false, 100).anyRequest()).isTrue();
        assertThat(new CachePolicy(null, 60, true, 100).anyRequest()).isTrue();
        assertThat(CachePolicy.OFF.enabled()).isFalse();

        assertThat(new CachePolicy(null, 60, false, 100).hitPrice(1_234_567)).isEqualTo(1_234_567);
        assertThat(new CachePolicy(null, 60, false, 0).hitPrice(1_234_567)).isZero();
        assertThat(new CachePolicy(null, 60, false, 33).hitPrice(1_234_567)).isEqualTo(407_407); // 407,407.11 down
        assertThat(new CachePolicy(null, 60, false, 50).hitPrice(10_000_000_000_000L)).isEqualTo(5_000_000_000_000L);
    }

    @Test
    void aHeaderValueIsUseRefreshOrBypass() {
        assertThat(CacheMode.parse(null)).isEqualTo(CacheMode.USE);
        assertThat(CacheMode.parse(" Refresh ")).isEqualTo(CacheMode.REFRESH);
        assertThat(CacheMode.parse("bypass")).isEqualTo(CacheMode.BYPASS);
        assertThat(CacheMode.parse("no-store")).isNull();
    }

    @Test
    void anEntryRoundTrips_andAnythingElseIsAMiss() {
        CachedAnswer answer = new CachedAnswer(1_700_000_000_000L, "text/event-stream", new TokenUsage(10, 2, 5, 1),
                "gpt-4o-mini-2024-07-18", null, "data: {}\n\n".getBytes(StandardCharsets.UTF_8));
        CachedAnswer back = CachedAnswer.decode(answer.encode());
        assertThat(back).usingRecursiveComparison().isEqualTo(answer);
        assertThat(back.ageMs(1_700_000_001_500L)).isEqualTo(1_500);
        assertThat(back.ageMs(1_600_000_000_000L)).as("a clock behind").isZero();
        byte[] truncated = java.util.Arrays.copyOf(answer.encode(), answer.encode().length - 1);
        assertThat(CachedAnswer.decode(truncated)).isNull();
        assertThat(CachedAnswer.decode("GET me".getBytes(StandardCharsets.UTF_8))).isNull();
    }
}
