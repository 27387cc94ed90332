package dev.tokenmeter.events.serde;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.UsageTotal;
import org.apache.avro.Schema;
import org.apache.avro.SchemaBuilder;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.kafka.common.errors.SerializationException;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class AvroSerdeTest {

    static UsageEvent sampleEvent() {
        return UsageEvent.newBuilder()
                .setEventId(UUID.randomUUID().toString())
                .setOccurredAt(Instant.parse("2026-03-31T23:59:59.999Z"))
                .setReceivedAt(Instant.parse("2026-04-01T00:00:00.010Z"))
                .setTenantId("acme")
                .setUserId("alice")
                .setKeySource(KeySource.SERVICE_CREDIT)
                .setModel("gpt-4o-mini")
                .setEndpoint("/v1/chat/completions")
                .setOutcome(Outcome.SUCCEEDED)
                .setHttpStatus(200)
                .setPromptTokens(1200)
                .setCachedPromptTokens(1024)
                .setCompletionTokens(300)
                .setCostNanoUsd(Long.MAX_VALUE)
                .setUsageSource(UsageSource.REPORTED)
                .setAttributes(Map.of("feature", "chat"))
                .build();
    }

    @Test
    void roundTripsEveryFieldIncludingNullsAndExtremes() {
        AvroSerde<UsageEvent> serde = EventSerdes.usageEvent();
        UsageEvent event = sampleEvent();
        assertThat(event.getApiKeyId()).isNull();
        assertThat(event.getProvider()).as("schema default").isEqualTo("openai");

        byte[] bytes = serde.serialize("t", event);
        assertThat(serde.deserialize("t", bytes)).isEqualTo(event);
        assertThat(serde.serialize("t", null)).isNull();
        assertThat(serde.deserialize("t", null)).isNull();
    }

    @Test
    void writesSingleObjectEncodingWithTheSchemaFingerprint() {
        byte[] bytes = EventSerdes.usageEvent().encode(sampleEvent());
        assertThat(bytes[0]).isEqualTo((byte) 0xC3);
        assertThat(bytes[1]).isEqualTo((byte) 0x01);
        long fingerprint = ByteBuffer.wrap(bytes, 2, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        assertThat(fingerprint).isEqualTo(org.apache.avro.SchemaNormalization.parsingFingerprint64(UsageEvent.getClassSchema()));
    }

    @Test
    void readsAnOlderWriterSchemaWithDefaultsForNewFields() throws Exception {
        // An older producer that knew only a few fields (every later field has a default).
        Schema older = SchemaBuilder.record("UsageEvent").namespace("dev.tokenmeter.events").fields()
                .requiredString("eventId")
                .name("occurredAt").type(org.apache.avro.LogicalTypes.timestampMillis().addToSchema(Schema.create(Schema.Type.LONG))).noDefault()
                .name("receivedAt").type(org.apache.avro.LogicalTypes.timestampMillis().addToSchema(Schema.create(Schema.Type.LONG))).noDefault()
                .requiredString("tenantId").requiredString("userId")
                .requiredString("model").requiredString("endpoint")
                .requiredLong("costNanoUsd")
                .endRecord();
        GenericRecord record = new GenericData.Record(older);
        String id = UUID.randomUUID().toString();
        record.put("eventId", id);
        record.put("occurredAt", 1_700_000_000_000L);
        record.put("receivedAt", 1_700_000_000_500L);
        record.put("tenantId", "acme");
        record.put("userId", "bob");
        record.put("model", "gpt-4o");
        record.put("endpoint", "/v1/embeddings");
        record.put("costNanoUsd", 12_345L);
        byte[] bytes = toBytes(new BinaryMessageEncoder<>(GenericData.get(), older).encode(record));

        AvroSerde<UsageEvent> serde = new AvroSerde<>(UsageEvent.class, UsageEvent.getClassSchema(), List.of(older));
        UsageEvent decoded = serde.decode(bytes);
        assertThat(decoded.getEventId()).isEqualTo(id);
        assertThat(decoded.getCostNanoUsd()).isEqualTo(12_345L);
        assertThat(decoded.getOccurredAt()).isEqualTo(Instant.ofEpochMilli(1_700_000_000_000L));
        assertThat(decoded.getKeySource()).as("enum default").isEqualTo(KeySource.NONE);
        assertThat(decoded.getOutcome()).isEqualTo(Outcome.FAILED);
        assertThat(decoded.getAttributes()).isEmpty();
    }

    @Test
    void anUnknownSchemaOrGarbageIsASerializationErrorNotAGuess() {
        AvroSerde<UsageEvent> serde = EventSerdes.usageEvent();
        byte[] totalBytes = EventSerdes.usageTotal().encode(sampleTotal());
        assertThatThrownBy(() -> serde.deserialize("t", totalBytes))
                .isInstanceOf(SerializationException.class).hasMessageContaining("cannot decode UsageEvent");
        assertThatThrownBy(() -> serde.deserialize("t", "{\"eventId\":\"x\"}".getBytes()))
                .isInstanceOf(SerializationException.class);
        assertThatThrownBy(() -> serde.deserialize("t", new byte[0])).isInstanceOf(SerializationException.class);
    }

    @Test
    void releasedVersionsAreOnTheClasspathAndIncludeTheCurrentOne() {
        List<Schema> versions = ReleasedSchemas.versionsOf("dev.tokenmeter.events.UsageEvent");
        assertThat(versions).isNotEmpty();
        assertThat(org.apache.avro.SchemaNormalization.toParsingForm(versions.get(versions.size() - 1)))
                .isEqualTo(org.apache.avro.SchemaNormalization.toParsingForm(UsageEvent.getClassSchema()));
    }

    static UsageTotal sampleTotal() {
        return UsageTotal.newBuilder()
                .setUserId("alice").setModel("gpt-4o").setKeySource(KeySource.PERSONAL_KEY)
                .setGranularity(dev.tokenmeter.events.Granularity.MONTH)
                .setPeriodStart(Instant.parse("2026-02-01T00:00:00Z"))
                .setPeriodEnd(Instant.parse("2026-03-01T00:00:00Z"))
                .setRevision(3)
                .build();
    }

    private static byte[] toBytes(ByteBuffer buffer) {
        byte[] bytes = new byte[buffer.remaining()];
        buffer.get(bytes);
        return bytes;
    }
}
