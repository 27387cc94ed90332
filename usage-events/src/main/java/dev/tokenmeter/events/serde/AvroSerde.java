package dev.tokenmeter.events.serde;

import org.apache.avro.Schema;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Kafka (and Kafka Streams) serde for one generated Avro record type in Avro single-object encoding:
 * every message starts with the two-byte marker {@code C3 01} and the 8-byte CRC-64-AVRO fingerprint of
 * the writer's schema. The decoder knows every released version of the schema (see
 * {@link ReleasedSchemas}), so a consumer built against the current schema reads messages written with
 * any older version, and resolves them to the current shape with Avro's schema resolution rules.
 *
 * <p>A message whose fingerprint is unknown, or whose bytes are not single-object encoded, raises a
 * {@link SerializationException}: the caller routes it to a dead-letter topic instead of guessing.
 *
 * <p>Thread-safe: Avro's message encoder and decoder are safe for concurrent use.
 */
public final class AvroSerde<T extends SpecificRecord> implements Serde<T>, Serializer<T>, Deserializer<T> {

    private final Class<T> type;
    private final BinaryMessageEncoder<T> encoder;
    private final BinaryMessageDecoder<T> decoder;

    public AvroSerde(Class<T> type, Schema currentSchema, List<Schema> olderSchemas) {
        this.type = type;
        SpecificData model = SpecificData.getForClass(type);
        this.encoder = new BinaryMessageEncoder<>(model, currentSchema);
        this.decoder = new BinaryMessageDecoder<>(model, currentSchema);
        olderSchemas.forEach(decoder::addSchema);
    }

    /** Serde for a generated type, resolving every released version of its schema. */
    public static <T extends SpecificRecord> AvroSerde<T> forType(Class<T> type) {
        Schema current = SpecificData.get().getSchema(type);
        return new AvroSerde<>(type, current, ReleasedSchemas.versionsOf(current.getFullName()));
    }

    public byte[] encode(T value) {
        try {
            ByteBuffer buffer = encoder.encode(value);
            byte[] bytes = new byte[buffer.remaining()];
            buffer.get(bytes);
            return bytes;
        } catch (IOException | RuntimeException e) {
            throw new SerializationException("cannot encode " + type.getSimpleName() + ": " + e.getMessage(), e);
        }
    }

    public T decode(byte[] bytes) {
        try {
            return decoder.decode(bytes);
        } catch (IOException | RuntimeException e) {
            throw new SerializationException("cannot decode " + type.getSimpleName() + " (" + bytes.length
                    + " bytes): " + e.getMessage(), e);
        }
    }

    @Override
    public byte[] serialize(String topic, T data) {
        return data == null ? null : encode(data);
    }

    @Override
    public T deserialize(String topic, byte[] data) {
        return data == null ? null : decode(data);
    }

    @Override
    public Serializer<T> serializer() {
        return this;
    }

    @Override
    public Deserializer<T> deserializer() {
        return this;
    }

    @Override
    public void configure(java.util.Map<String, ?> configs, boolean isKey) {
        // Nothing to configure: the type and its schemas are fixed at construction.
    }

    @Override
    public void close() {
        // Stateless: nothing to release; Kafka calls this on every serializer it closes.
    }

    public Class<T> type() {
        return type;
    }
}
