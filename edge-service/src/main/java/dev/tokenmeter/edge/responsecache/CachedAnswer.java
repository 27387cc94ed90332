package dev.tokenmeter.edge.responsecache;

import dev.tokenmeter.edge.pricing.TokenUsage;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * One cached answer: the upstream's body as the caller of the miss got it (a JSON body, or the SSE stream with its
 * usage chunk), what it was billed by (the reported usage, the model and tier the answer named), and when it was
 * stored. Stored as one Redis string, so a hit is one GET.
 */
public record CachedAnswer(long storedAtEpochMs, String contentType, TokenUsage usage, String answeredModel,
                           String serviceTier, byte[] body) {

    private static final int FORMAT = 1;

    /** Its age at {@code nowEpochMs}, never negative (edges' clocks differ a little). */
    public long ageMs(long nowEpochMs) {
        return Math.max(0, nowEpochMs - storedAtEpochMs);
    }

    public byte[] encode() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(body.length + 128);
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeByte(FORMAT);
            out.writeLong(storedAtEpochMs);
            out.writeUTF(contentType);
            out.writeLong(usage.promptTokens());
            out.writeLong(usage.cachedPromptTokens());
            out.writeLong(usage.completionTokens());
            out.writeLong(usage.reasoningTokens());
            out.writeUTF(answeredModel == null ? "" : answeredModel);
            out.writeUTF(serviceTier == null ? "" : serviceTier);
            out.writeInt(body.length);
            out.write(body);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /** The answer stored in {@code bytes}; null for anything else (another format, a truncated value). */
    public static CachedAnswer decode(byte[] bytes) {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
            if (in.readByte() != FORMAT) {
                return null;
            }
            long storedAt = in.readLong();
            String contentType = in.readUTF();
            TokenUsage usage = new TokenUsage(in.readLong(), in.readLong(), in.readLong(), in.readLong());
            String model = in.readUTF();
            String tier = in.readUTF();
            int length = in.readInt();
            if (length < 0 || length != in.available()) {
                return null;
            }
            return new CachedAnswer(storedAt, contentType, usage, model.isEmpty() ? null : model,
                    tier.isEmpty() ? null : tier, in.readNBytes(length));
        } catch (IOException | IllegalArgumentException e) {
            return null;
        }
    }
}
