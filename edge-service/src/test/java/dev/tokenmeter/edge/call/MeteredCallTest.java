package dev.tokenmeter.edge.call;

import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.edge.quota.DecisionMode;
import dev.tokenmeter.edge.quota.RejectReason;
import dev.tokenmeter.edge.quota.Route;
import dev.tokenmeter.edge.quota.SoftLimitStatus;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The metered-call core on its own: what the proxy and the metering API both rely on. */
class MeteredCallTest {

    private static final Instant NOW = Instant.parse("2026-12-03T10:00:00Z");
    private static final Caller CALLER = new Caller("key-1", "user-1", "tenant-1");
    private static final long INPUT = 250;
    private static final long CACHED_INPUT = 125;
    private static final long OUTPUT = 1_000;
    private static final ModelPrice PRICE = new ModelPrice("gpt-test", Instant.EPOCH, INPUT, CACHED_INPUT, OUTPUT, "v7");

    private final List<String> timeline = new ArrayList<>();
    private final ScriptedQuota quota = new ScriptedQuota(timeline);
    private final InMemorySink sink = new InMemorySink(timeline);
    private final List<String> meters = new ArrayList<>();
    private final Metering metering = new Metering(quota, sink, new CallMetrics() {
        @Override
        public void decision(Duration d) {
            meters.add("decision");
        }

        @Override
        public void failOpenAdmission() {
            meters.add("fail_open");
        }
    }, "edge-test", Clock.fixed(NOW, ZoneOffset.UTC));

    private MeteredCall call() {
        return metering.start(CALLER, "/v1/chat/completions").model("gpt-test").price(PRICE);
    }

    @Test
    void aFailingGate_isQuotaUnavailable_andTheRefusedCallHasOneRejectedEvent() {
        quota.failure = new IllegalStateException("redis down");
        MeteredCall call = call();

        Decision d = call.reserve(1_000, 10);
        OpenAiError error = call.reject(d);

        assertThat(d.admitted()).isFalse();
        assertThat(d.rejectReason()).isEqualTo(RejectReason.QUOTA_UNAVAILABLE);
        assertThat(d.retryAfter()).isEqualTo(Duration.ofSeconds(1));
        assertThat(error.status()).isEqualTo(503);
        assertThat(meters).containsExactly("decision");
        UsageEvent event = sink.events.get(0);
        assertThat(sink.events).hasSize(1);
        assertThat(event.getOutcome()).isEqualTo(Outcome.REJECTED);
        assertThat(event.getHttpStatus()).isEqualTo(503);
        assertThat(event.getKeySource()).isEqualTo(KeySource.NONE);
        assertThat(event.getAttributes()).containsEntry("reject_reason", "QUOTA_UNAVAILABLE");
        assertThat(event.getOccurredAt()).isEqualTo(NOW);
        assertThat(event.getEdgeInstance()).isEqualTo("edge-test");
    }

    @Test
    void billsCachedAndUncachedPromptAndCompletionAtTheirPrices_exactly_andPublishesOnce() {
        MeteredCall call = call().keySource(KeySource.SERVICE_CREDIT);
        call.reserve(1_000, 10);

        MeteredCall.Billed billed = call.bill(Outcome.SUCCEEDED, 200, new TokenUsage(1_000, 400, 50, 20), null);
        call.publish(Outcome.FAILED, 500, TokenUsage.NONE, 0, UsageSource.REPORTED);

        long expected = 600 * INPUT + 400 * CACHED_INPUT + 50 * OUTPUT;
        assertThat(billed).isEqualTo(new MeteredCall.Billed(expected, 1_050));
        assertThat(sink.events).hasSize(1);
        UsageEvent event = sink.events.get(0);
        assertThat(event.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
        assertThat(event.getCostNanoUsd()).isEqualTo(expected);
        assertThat(event.getPriceVersion()).isEqualTo("v7");
        assertThat(event.getReservationId()).isEqualTo("res-1");
        assertThat(event.getCacheHit()).isTrue();
    }

    @Test
    void withoutReportedUsage_theCountedUsageIsBilled_estimated() {
        MeteredCall call = call();
        call.reserve(1_000, 10);

        MeteredCall.Billed billed = call.bill(Outcome.FAILED, 200, null, new TokenUsage(30, 0, 7, 0));
        call.settle(billed);
        call.settle(billed);

        assertThat(sink.events.get(0).getUsageSource()).isEqualTo(UsageSource.ESTIMATED);
        assertThat(billed.costNanoUsd()).isEqualTo(30 * INPUT + 7 * OUTPUT);
        assertThat(quota.settles).as("settled once").containsExactly(
                new ScriptedQuota.Settle("res-1", 30 * INPUT + 7 * OUTPUT, 37, sink.events.get(0).getEventId()));
    }

    @Test
    void aFullSpool_unwindsAsSpoolFull_andTheCallPublishesNothingMore() {
        sink.full = true;
        MeteredCall call = call();
        call.reserve(1_000, 10);

        assertThatThrownBy(() -> call.bill(Outcome.SUCCEEDED, 200, new TokenUsage(5, 0, 5, 0), null))
                .isInstanceOf(MeteredCall.SpoolFull.class);
        sink.full = false;
        call.failedInside();

        assertThat(sink.events).isEmpty();
        assertThat(quota.releases).containsExactly("res-1");
        assertThat(quota.settles).isEmpty();
    }

    @Test
    void aFailOpenAdmission_isCountedAndMarkedOnTheEvent() {
        quota.next = new Decision(Route.SERVICE_CREDIT, null, "res-open", null, null, 0, 0, List.of(), SoftLimitStatus.UNKNOWN,
                DecisionMode.FAIL_OPEN, null);
        MeteredCall call = call();

        call.reserve(1_000, 10);
        call.bill(Outcome.SUCCEEDED, 200, new TokenUsage(1, 0, 1, 0), null);

        assertThat(meters).containsExactly("decision", "fail_open");
        assertThat(sink.events.get(0).getAttributes()).containsEntry("fail_open", "true");
    }

    @Test
    void aResumedCall_settlesItsReservationBeforeItsEvent_withTheGivenIdAndLatency() {
        Instant reservedAt = NOW.minusSeconds(30);
        MeteredCall call = metering.resume(CALLER, "/v1/chat/completions", "evt-commit-1", reservedAt, "res-9")
                .model("gpt-test").price(PRICE).keySource(KeySource.PERSONAL_KEY).latencyMs(812);
        TokenUsage usage = new TokenUsage(10, 0, 4, 0);
        long cost = PRICE.costNanoUsd(usage);

        call.settle(new MeteredCall.Billed(cost, usage.totalTokens()));
        call.publish(Outcome.SUCCEEDED, 200, usage, cost, UsageSource.REPORTED);

        assertThat(timeline).containsExactly("settle", "event");
        assertThat(quota.settles).containsExactly(new ScriptedQuota.Settle("res-9", 10 * INPUT + 4 * OUTPUT, 14, "evt-commit-1"));
        UsageEvent event = sink.events.get(0);
        assertThat(event.getEventId()).isEqualTo("evt-commit-1");
        assertThat(event.getOccurredAt()).isEqualTo(reservedAt);
        assertThat(event.getReceivedAt()).isEqualTo(NOW);
        assertThat(event.getLatencyMs()).isEqualTo(812);
        assertThat(event.getKeySource()).isEqualTo(KeySource.PERSONAL_KEY);
        assertThat(event.getReservationId()).isEqualTo("res-9");
    }
}
