package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.Granularity;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import org.apache.kafka.common.errors.SerializationException;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class RunningTotalTest {

    @Test
    void storedFormRoundTripsEveryFieldExactly() {
        RunningTotal t = new RunningTotal("user-ü-東京|1", "tenant\t1", "gpt-4o-mini", KeySource.PERSONAL_KEY,
                Granularity.MONTH, Instant.parse("2028-02-01T00:00:00Z").toEpochMilli(),
                Instant.parse("2028-03-01T00:00:00Z").toEpochMilli());
        t.add(event("2028-02-29T23:59:59.999Z", Outcome.CANCELLED, Long.MAX_VALUE / 2));
        t.add(event("2028-02-01T00:00:00.000Z", Outcome.SUCCEEDED, 1));
        t.isFinal = true;

        RunningTotal back = RunningTotal.SERDE.deserializer().deserialize("t", RunningTotal.SERDE.serializer().serialize("t", t));

        UsageTotal expected = t.toAvro();
        assertThat(back.toAvro()).isEqualTo(expected);
        assertThat(expected.getCostNanoUsd()).isEqualTo(Long.MAX_VALUE / 2 + 1);
        assertThat(expected.getFirstEventAt()).isEqualTo(Instant.parse("2028-02-01T00:00:00Z"));
        assertThat(expected.getLastEventAt()).isEqualTo(Instant.parse("2028-02-29T23:59:59.999Z"));
        assertThat(expected.getCancelledCount()).isEqualTo(1);
        assertThat(expected.getSucceededCount()).isEqualTo(1);
        assertThat(expected.getRevision()).isEqualTo(2);
        assertThat(expected.getIsFinal()).isTrue();
    }

    @Test
    void anEmptyTotalHasNoFirstOrLastEvent() {
        RunningTotal t = new RunningTotal("u", "t", "m", KeySource.NONE, Granularity.HOUR, 0, 3_600_000);
        UsageTotal back = RunningTotal.SERDE.deserializer().deserialize("t", RunningTotal.SERDE.serializer().serialize("t", t)).toAvro();
        assertThat(back.getFirstEventAt()).isNull();
        assertThat(back.getLastEventAt()).isNull();
        assertThat(back.getRevision()).isZero();
    }

    @Test
    void overflowFailsLoudlyInsteadOfWrapping() {
        RunningTotal t = new RunningTotal("u", "t", "m", KeySource.SERVICE_CREDIT, Granularity.HOUR, 0, 3_600_000);
        t.add(event("1970-01-01T00:00:01Z", Outcome.SUCCEEDED, Long.MAX_VALUE));
        assertThatThrownBy(() -> t.add(event("1970-01-01T00:00:02Z", Outcome.SUCCEEDED, 1)))
                .isInstanceOf(ArithmeticException.class);
    }

    /** Issue 14, finding 3: a total that would overflow is refused before anything changes (the event is dead-lettered whole). */
    @Test
    void requireRoomForRefusesAnOverflowAndChangesNothing() {
        RunningTotal t = new RunningTotal("u", "t", "m", KeySource.SERVICE_CREDIT, Granularity.MONTH, 0, 3_600_000);
        t.add(event("1970-01-01T00:00:01Z", Outcome.SUCCEEDED, 5_000_000_000_000_000_000L));
        byte[] before = RunningTotal.SERDE.serializer().serialize("t", t);
        assertThatThrownBy(() -> t.requireRoomFor(event("1970-01-01T00:00:02Z", Outcome.SUCCEEDED, 5_000_000_000_000_000_000L)))
                .isInstanceOf(ArithmeticException.class).hasMessageContaining("would overflow costNanoUsd");
        assertThat(RunningTotal.SERDE.serializer().serialize("t", t)).isEqualTo(before);
        t.requireRoomFor(event("1970-01-01T00:00:02Z", Outcome.SUCCEEDED, Long.MAX_VALUE - 5_000_000_000_000_000_000L));
    }

    @Test
    void unknownFormatsAndTruncatedBytesAreRefused() {
        RunningTotal t = new RunningTotal("u", "t", "m", KeySource.NONE, Granularity.HOUR, 0, 3_600_000);
        byte[] bytes = RunningTotal.SERDE.serializer().serialize("t", t);
        byte[] future = bytes.clone();
        future[0] = 2;
        assertThatThrownBy(() -> RunningTotal.SERDE.deserializer().deserialize("t", future))
                .isInstanceOf(SerializationException.class).hasMessageContaining("format 2");
        assertThatThrownBy(() -> RunningTotal.SERDE.deserializer().deserialize("t", Arrays.copyOf(bytes, bytes.length - 3)))
                .isInstanceOf(SerializationException.class);
        assertThatThrownBy(() -> RunningTotal.SERDE.deserializer().deserialize("t", Arrays.copyOf(bytes, bytes.length + 1)))
                .isInstanceOf(SerializationException.class).hasMessageContaining("trailing");
    }

    private static UsageEvent event(String at, Outcome outcome, long cost) {
        Instant t = Instant.parse(at);
        return UsageEvent.newBuilder()
                .setEventId("e-" + at).setOccurredAt(t).setReceivedAt(t)
                .setTenantId("t").setUserId("u").setKeySource(KeySource.SERVICE_CREDIT)
                .setModel("m").setEndpoint("/v1/chat/completions").setOutcome(outcome).setHttpStatus(200)
                .setPromptTokens(3).setCompletionTokens(4).setCostNanoUsd(cost)
                .build();
    }
}
