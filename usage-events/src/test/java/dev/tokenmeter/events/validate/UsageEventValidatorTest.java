package dev.tokenmeter.events.validate;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.UnaryOperator;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 14, finding 1: the bounds of ADR 0053 are enforced by the one validator the publisher, the edge's batch
 * ingest, the aggregator and the sink all use, so an app server embedding the publisher cannot publish an
 * oversized or unstorable event either.
 */
class UsageEventValidatorTest {

    private static final String HUGE = "m".repeat(1_500_000);

    private static UsageEvent valid() {
        Instant t = Instant.parse("2026-11-05T10:00:00Z");
        return UsageEvent.newBuilder()
                .setEventId(UUID.randomUUID().toString()).setOccurredAt(t).setReceivedAt(t)
                .setTenantId("t-1").setUserId("u-1").setApiKeyId("k-1").setKeySource(KeySource.SERVICE_CREDIT)
                .setModel("ft:gpt-4o-mini:org/x.y_z").setEndpoint("/v1/chat/completions").setUpstreamRequestId("req_abc")
                .setOutcome(Outcome.SUCCEEDED).setHttpStatus(200)
                .setPromptTokens(10).setCompletionTokens(5).setCostNanoUsd(100)
                .setPriceVersion("gpt-4o-mini@2024-07-18T00:00:00Z").setReservationId("{u:u-1}:2026-11:r:k-1:" + UUID.randomUUID())
                .setEdgeInstance("edge-1").setAttributes(Map.of("source", "metering_api"))
                .build();
    }

    private static List<String> problems(UnaryOperator<UsageEvent.Builder> change) {
        return UsageEventValidator.problems(change.apply(UsageEvent.newBuilder(valid())).build());
    }

    @Test
    void aTypicalEventAndOneAtEveryLimitAreValid() {
        assertThat(UsageEventValidator.problems(valid())).isEmpty();
        Map<String, String> attributes = new HashMap<>();
        for (int i = 0; i < UsageEventBounds.ATTRIBUTES_MAX_ENTRIES; i++) {
            attributes.put("k".repeat(UsageEventBounds.ATTRIBUTE_KEY_MAX_CHARS - 2) + i % 10 + i / 10,
                    "tab\there é 中文 😀".repeat(1) + "v".repeat(200));
        }
        assertThat(problems(b -> b.setModel("m".repeat(128)).setEndpoint("/" + "e".repeat(127)).setUserId("u".repeat(128))
                .setUpstreamRequestId("!\"#$%&'()*+,-./~".repeat(20))
                .setPromptTokens(UsageEventBounds.TOKENS_MAX).setCachedPromptTokens(UsageEventBounds.TOKENS_MAX)
                .setCompletionTokens(UsageEventBounds.TOKENS_MAX).setReasoningTokens(UsageEventBounds.TOKENS_MAX)
                .setCostNanoUsd(UsageEventBounds.COST_MAX_NANO_USD).setLatencyMs(UsageEventBounds.LATENCY_MAX_MS)
                .setOccurredAt(Instant.EPOCH).setReceivedAt(Instant.parse("9999-12-31T23:59:59.999Z"))
                .setAttributes(attributes))).isEmpty();
    }

    @Test
    void oversizedStringsAreRefusedWithoutEchoingThem() {
        for (List<String> p : List.of(
                problems(b -> b.setModel(HUGE)),
                problems(b -> b.setEndpoint(HUGE)),
                problems(b -> b.setUpstreamRequestId(HUGE)),
                problems(b -> b.setUserId(HUGE)),
                problems(b -> b.setTenantId(HUGE)),
                problems(b -> b.setApiKeyId(HUGE)),
                problems(b -> b.setEventId(HUGE)),
                problems(b -> b.setPriceVersion(HUGE)),
                problems(b -> b.setReservationId(HUGE)),
                problems(b -> b.setEdgeInstance(HUGE)),
                problems(b -> b.setAttributes(Map.of("feature", HUGE))),
                problems(b -> b.setAttributes(Map.of(HUGE, "v"))))) {
            assertThat(p).hasSize(1);
            assertThat(p.get(0).length()).as(p.get(0)).isLessThan(200);
            assertThat(p.get(0)).contains("1500000 chars");
        }
        assertThat(problems(b -> b.setModel("m".repeat(129)))).singleElement().asString().contains("model", "128");
        assertThat(problems(b -> b.setEndpoint("e".repeat(129)))).singleElement().asString().contains("endpoint", "128");
        assertThat(problems(b -> b.setUpstreamRequestId("r".repeat(321)))).singleElement().asString().contains("upstreamRequestId", "320");
        assertThat(problems(b -> b.setUserId("u".repeat(129)))).singleElement().asString().contains("userId", "128");
    }

    @Test
    void stringsOutsideTheirAlphabetAreRefused() {
        assertThat(problems(b -> b.setModel("gpt-4o\u0000"))).singleElement().asString().contains("model", "\\u0000");
        assertThat(problems(b -> b.setModel("gpt 4o"))).hasSize(1);
        assertThat(problems(b -> b.setModel(""))).hasSize(1);
        assertThat(problems(b -> b.setEndpoint("/v1/chat\ncompletions"))).hasSize(1);
        assertThat(problems(b -> b.setUserId("u 1"))).hasSize(1);
        assertThat(problems(b -> b.setTenantId("t/1"))).hasSize(1);
        assertThat(problems(b -> b.setUpstreamRequestId("req id"))).hasSize(1);
        assertThat(problems(b -> b.setUpstreamRequestId("req\u00e9"))).hasSize(1);
        assertThat(problems(b -> b.setAttributes(Map.of("feature", "a\u0000b")))).singleElement().asString().contains("U+0000");
        assertThat(problems(b -> b.setAttributes(Map.of("fea ture", "x")))).hasSize(1);
        Map<String, String> many = new HashMap<>();
        for (int i = 0; i <= UsageEventBounds.ATTRIBUTES_MAX_ENTRIES; i++) {
            many.put("k" + i, "v");
        }
        assertThat(problems(b -> b.setAttributes(many))).singleElement().asString().contains("16");
    }

    @Test
    void countsCostsLatencyStatusAndTimesAreBounded() {
        assertThat(problems(b -> b.setPromptTokens(UsageEventBounds.TOKENS_MAX + 1))).singleElement().asString()
                .contains("promptTokens", "1000000000");
        assertThat(problems(b -> b.setCompletionTokens(500_000_000_000_000L))).isNotEmpty();
        assertThat(problems(b -> b.setPromptTokens(-1))).contains("promptTokens must be >= 0, got -1");
        assertThat(problems(b -> b.setCostNanoUsd(UsageEventBounds.COST_MAX_NANO_USD + 1))).singleElement().asString()
                .contains("costNanoUsd", "10000000000000");
        assertThat(problems(b -> b.setLatencyMs(Long.MAX_VALUE))).hasSize(1);
        assertThat(problems(b -> b.setHttpStatus(-1))).hasSize(1);
        assertThat(problems(b -> b.setHttpStatus(600))).hasSize(1);
        assertThat(problems(b -> b.setHttpStatus(0))).isEmpty();
        assertThat(problems(b -> b.setOccurredAt(Instant.parse("1969-12-31T23:59:59.999Z")))).singleElement().asString()
                .contains("occurredAt");
        assertThat(problems(b -> b.setReceivedAt(Instant.parse("+10000-01-01T00:00:00Z")))).singleElement().asString()
                .contains("receivedAt");
    }

    @Test
    void requireValidThrowsWithEveryProblem() {
        UsageEvent bad = UsageEvent.newBuilder(valid()).setModel(HUGE).setPromptTokens(-1).build();
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> UsageEventValidator.requireValid(bad))
                .isInstanceOf(InvalidUsageEventException.class)
                .hasMessageContaining("model").hasMessageContaining("promptTokens");
    }
}
