package dev.tokenmeter.edge;

import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.Behavior;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.openai.Usage;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.time.Instant;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 14, finding 7: a client that closes a stream right after the content must not cut its bill. The edge
 * keeps reading the upstream (up to UPSTREAM_DRAIN_TIMEOUT) for its usage chunk and bills what the upstream
 * reports; only when that does not come in time does it bill an estimate, never below the prompt estimate plus the
 * streamed completion tokens. Events are read from the real usage-events topic, reservations from the real Redis.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EdgeClientDisconnectIT {

    /** Long enough for the rest of the content (40 deltas, 20 ms apart) plus the 300 ms usage delay on a busy box. */
    private static final Duration DRAIN = Duration.ofSeconds(4);

    private FakeOpenAi openAi;
    private EdgeTestBed bed;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.builder().streamChunkDelay(Duration.ofMillis(20)).build();
        bed = new EdgeTestBed(engines, openAi, Map.of("UPSTREAM_DRAIN_TIMEOUT", DRAIN.toMillis() + "ms"));
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    @Test
    void clientThatClosesAfterTheContentPaysTheUpstreamsReportedUsageInclReasoning() throws Exception {
        User user = bed.newUser(Money.usd(5));
        // o4-mini reasons: the fake reports completion/4 reasoning tokens that no delta shows.
        UsageEvent event = leaveAfterThreeDeltas(user, Duration.ofMillis(300), "o4-mini", "Think, then answer [[fake:completion=52]]");
        Usage upstream = FakeOpenAi.usageFor("/v1/chat/completions", openAi.requests().getLast().body());
        assertThat(upstream.reasoningTokens()).isEqualTo(13);
        assertThat(event.getAttributes()).doesNotContainKey("drain");
        assertThat(event.getUsageSource()).as("the usage chunk that came after the client left").isEqualTo(UsageSource.REPORTED);
        assertThat(event.getPromptTokens()).isEqualTo(upstream.promptTokens());
        assertThat(event.getCompletionTokens()).isEqualTo(upstream.completionTokens());
        assertThat(event.getReasoningTokens()).isEqualTo(upstream.reasoningTokens());
        long cost = price("o4-mini").costNanoUsd(new TokenUsage(upstream.promptTokens(), upstream.cachedPromptTokens(),
                upstream.completionTokens(), upstream.reasoningTokens()));
        assertThat(event.getCostNanoUsd()).isEqualTo(cost).isPositive();
        assertThat(bed.events(user.userId())).as("exactly one event").hasSize(1);
        awaitSettled(user, cost);
    }

    @Test
    void whenTheUsageDoesNotComeWithinTheDrainTimeoutTheCallIsBilledNoLessThanPromptPlusStreamedTokens() throws Exception {
        User user = bed.newUser(Money.usd(5));
        Instant start = Instant.now();
        // The upstream sends all 40 deltas, then holds its usage chunk far past the drain timeout.
        UsageEvent event = leaveAfterThreeDeltas(user, Duration.ofSeconds(60), "gpt-4o-mini", "Go on [[fake:completion=40]]");
        assertThat(Duration.between(start, Instant.now())).as("the drain is bounded by UPSTREAM_DRAIN_TIMEOUT")
                .isLessThan(DRAIN.plusSeconds(10));
        Usage upstream = FakeOpenAi.usageFor("/v1/chat/completions", openAi.requests().getLast().body());
        assertThat(event.getAttributes()).containsEntry("drain", "timeout");
        assertThat(event.getUsageSource()).isEqualTo(UsageSource.ESTIMATED);
        // The local prompt count equals the fake's formula for chat; every streamed delta is one token.
        assertThat(event.getPromptTokens()).as("the reserved prompt estimate").isEqualTo(upstream.promptTokens());
        assertThat(event.getCompletionTokens()).as("every delta the upstream streamed, not only those the client read")
                .isGreaterThanOrEqualTo(upstream.completionTokens());
        long cost = price("gpt-4o-mini").costNanoUsd(new TokenUsage(event.getPromptTokens(), 0, event.getCompletionTokens(), 0));
        assertThat(event.getCostNanoUsd()).isEqualTo(cost)
                .isGreaterThanOrEqualTo(price("gpt-4o-mini").costNanoUsd(new TokenUsage(upstream.promptTokens(), 0, 40, 0)));
        assertThat(bed.events(user.userId())).as("exactly one event").hasSize(1);
        awaitSettled(user, cost);
    }

    private ModelPrice price(String model) {
        return bed.app.priceBook().priceAt(model, Instant.now()).orElseThrow();
    }

    /**
     * A streamed call whose upstream sends its usage chunk {@code usageDelay} after the last delta; the caller
     * leaves after three content deltas. Returns the call's event, read from the topic.
     */
    private UsageEvent leaveAfterThreeDeltas(User user, Duration usageDelay, String model, String prompt) throws Exception {
        openAi.enqueue(Behavior.usageAfter(usageDelay));
        assertThat(bed.readContentDeltasThenClose(user, EdgeTestBed.chatStream(model, prompt), 3)).isEqualTo(3);
        UsageEvent event = bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(20)).getFirst();
        assertThat(event.getOutcome()).isEqualTo(Outcome.CANCELLED);
        assertThat(event.getAttributes()).containsEntry("cancelled", "client_disconnected");
        return event;
    }

    /** The reservation is settled with what was billed: the spend stays, nothing is handed back. */
    private void awaitSettled(User user, long usedNanoUsd) {
        await("settled spend " + usedNanoUsd + " and no open reservation").atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            assertThat(bed.usedNanoUsd(user.userId())).isEqualTo(usedNanoUsd);
            assertThat(bed.reservedNanoUsd(user.userId())).isZero();
        });
    }
}
