package dev.tokenmeter.aggregator;

import dev.tokenmeter.events.Granularity;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageTotal;
import dev.tokenmeter.events.money.Money;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;

/**
 * The aggregator's working copy of one total: plain mutable longs, updated in place per event and
 * turned into the Avro {@link UsageTotal} of the contract only when it is emitted. Stored in the totals
 * store with {@link #SERDE}, a compact versioned binary layout that is internal to the aggregator (its
 * state store and changelog), never on a topic others read — so it is not part of the Avro contract.
 */
final class RunningTotal {

    /** First byte of every stored value; a different layout gets a new number and a decoder for the old one. */
    static final byte FORMAT_V1 = 1;
    private static final long NONE = Long.MIN_VALUE;

    final String userId;
    final String tenantId;
    final String model;
    final KeySource keySource;
    final Granularity granularity;
    final long periodStart;
    final long periodEnd;
    long eventCount;
    long succeededCount;
    long failedCount;
    long cancelledCount;
    long rejectedCount;
    long promptTokens;
    long cachedPromptTokens;
    long completionTokens;
    long reasoningTokens;
    long costNanoUsd;
    long firstEventAt = NONE;
    long lastEventAt = NONE;
    long revision;
    boolean isFinal;

    RunningTotal(String userId, String tenantId, String model, KeySource keySource, Granularity granularity,
                 long periodStart, long periodEnd) {
        this.userId = userId;
        this.tenantId = tenantId;
        this.model = model;
        this.keySource = keySource;
        this.granularity = granularity;
        this.periodStart = periodStart;
        this.periodEnd = periodEnd;
    }

    /**
     * Throws when folding the event in would overflow a sum, before anything is changed: the processor
     * checks every total an event touches first, so an event that cannot be counted leaves no trace and
     * goes to the dead-letter topic ({@link ProcessingFailures}) instead of wrapping or half-counting.
     */
    void requireRoomFor(UsageEvent e) {
        requireRoom("promptTokens", promptTokens, e.getPromptTokens());
        requireRoom("cachedPromptTokens", cachedPromptTokens, e.getCachedPromptTokens());
        requireRoom("completionTokens", completionTokens, e.getCompletionTokens());
        requireRoom("reasoningTokens", reasoningTokens, e.getReasoningTokens());
        requireRoom("costNanoUsd", costNanoUsd, e.getCostNanoUsd());
        requireRoom("eventCount", eventCount, 1);
    }

    private void requireRoom(String field, long sum, long more) {
        long result = sum + more;
        // Overflow iff both operands have the sign the result lacks (Math.addExact's test).
        if (((sum ^ result) & (more ^ result)) < 0) {
            throw new ArithmeticException("the " + granularity + " total of user " + userId + " from "
                    + Instant.ofEpochMilli(periodStart) + " would overflow " + field + " (" + sum + " + " + more + ")");
        }
    }

    /** Folds one (validated, first-seen) event in; the revision grows by one. Overflow fails loudly. */
    void add(UsageEvent e) {
        eventCount++;
        switch (e.getOutcome()) {
            case SUCCEEDED -> succeededCount++;
            case FAILED -> failedCount++;
            case CANCELLED -> cancelledCount++;
            case REJECTED -> rejectedCount++;
        }
        promptTokens = Math.addExact(promptTokens, e.getPromptTokens());
        cachedPromptTokens = Math.addExact(cachedPromptTokens, e.getCachedPromptTokens());
        completionTokens = Math.addExact(completionTokens, e.getCompletionTokens());
        reasoningTokens = Math.addExact(reasoningTokens, e.getReasoningTokens());
        costNanoUsd = Money.add(costNanoUsd, e.getCostNanoUsd());
        long at = e.getOccurredAt().toEpochMilli();
        if (firstEventAt == NONE || at < firstEventAt) {
            firstEventAt = at;
        }
        if (lastEventAt == NONE || at > lastEventAt) {
            lastEventAt = at;
        }
        revision++;
    }

    UsageTotal toAvro() {
        return UsageTotal.newBuilder()
                .setUserId(userId).setTenantId(tenantId).setModel(model)
                .setKeySource(keySource).setGranularity(granularity)
                .setPeriodStart(Instant.ofEpochMilli(periodStart)).setPeriodEnd(Instant.ofEpochMilli(periodEnd))
                .setEventCount(eventCount).setSucceededCount(succeededCount).setFailedCount(failedCount)
                .setCancelledCount(cancelledCount).setRejectedCount(rejectedCount)
                .setPromptTokens(promptTokens).setCachedPromptTokens(cachedPromptTokens)
                .setCompletionTokens(completionTokens).setReasoningTokens(reasoningTokens)
                .setCostNanoUsd(costNanoUsd)
                .setFirstEventAt(firstEventAt == NONE ? null : Instant.ofEpochMilli(firstEventAt))
                .setLastEventAt(lastEventAt == NONE ? null : Instant.ofEpochMilli(lastEventAt))
                .setRevision(revision).setIsFinal(isFinal)
                .build();
    }

    static final Serde<RunningTotal> SERDE = new Codec();

    private static final class Codec implements Serde<RunningTotal>, Serializer<RunningTotal>, Deserializer<RunningTotal> {

        private static final KeySource[] SOURCES = KeySource.values();
        private static final Granularity[] GRANULARITIES = Granularity.values();
        private static final int LONGS = 15;

        @Override
        public byte[] serialize(String topic, RunningTotal t) {
            if (t == null) {
                return null;
            }
            byte[] user = t.userId.getBytes(StandardCharsets.UTF_8);
            byte[] tenant = t.tenantId.getBytes(StandardCharsets.UTF_8);
            byte[] model = t.model.getBytes(StandardCharsets.UTF_8);
            ByteBuffer b = ByteBuffer.allocate(1 + 3 + 12 + user.length + tenant.length + model.length + 8 * LONGS);
            b.put(FORMAT_V1).put((byte) t.keySource.ordinal()).put((byte) t.granularity.ordinal()).put((byte) (t.isFinal ? 1 : 0));
            b.putInt(user.length).put(user).putInt(tenant.length).put(tenant).putInt(model.length).put(model);
            b.putLong(t.periodStart).putLong(t.periodEnd)
                    .putLong(t.eventCount).putLong(t.succeededCount).putLong(t.failedCount)
                    .putLong(t.cancelledCount).putLong(t.rejectedCount)
                    .putLong(t.promptTokens).putLong(t.cachedPromptTokens).putLong(t.completionTokens).putLong(t.reasoningTokens)
                    .putLong(t.costNanoUsd).putLong(t.firstEventAt).putLong(t.lastEventAt).putLong(t.revision);
            return b.array();
        }

        @Override
        public RunningTotal deserialize(String topic, byte[] data) {
            if (data == null) {
                return null;
            }
            try {
                ByteBuffer b = ByteBuffer.wrap(data);
                byte format = b.get();
                if (format != FORMAT_V1) {
                    throw new SerializationException("unknown running-total format " + format);
                }
                KeySource source = SOURCES[b.get()];
                Granularity granularity = GRANULARITIES[b.get()];
                boolean isFinal = b.get() == 1;
                String user = string(b);
                String tenant = string(b);
                String model = string(b);
                RunningTotal t = new RunningTotal(user, tenant, model, source, granularity, b.getLong(), b.getLong());
                t.eventCount = b.getLong();
                t.succeededCount = b.getLong();
                t.failedCount = b.getLong();
                t.cancelledCount = b.getLong();
                t.rejectedCount = b.getLong();
                t.promptTokens = b.getLong();
                t.cachedPromptTokens = b.getLong();
                t.completionTokens = b.getLong();
                t.reasoningTokens = b.getLong();
                t.costNanoUsd = b.getLong();
                t.firstEventAt = b.getLong();
                t.lastEventAt = b.getLong();
                t.revision = b.getLong();
                t.isFinal = isFinal;
                if (b.hasRemaining()) {
                    throw new SerializationException(b.remaining() + " trailing bytes after a running total");
                }
                return t;
            } catch (RuntimeException e) {
                throw e instanceof SerializationException s ? s
                        : new SerializationException("cannot decode a running total (" + data.length + " bytes)", e);
            }
        }

        private static String string(ByteBuffer b) {
            byte[] bytes = new byte[b.getInt()];
            b.get(bytes);
            return new String(bytes, StandardCharsets.UTF_8);
        }

        @Override
        public void configure(java.util.Map<String, ?> configs, boolean isKey) {
            // Nothing to configure.
        }

        @Override
        public void close() {
            // Stateless.
        }

        @Override
        public Serializer<RunningTotal> serializer() {
            return this;
        }

        @Override
        public Deserializer<RunningTotal> deserializer() {
            return this;
        }
    }
}
