package dev.tokenmeter.edge.metering;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Locale;
import java.util.UUID;

/**
 * The stored event id of an event whose id the caller chose (batch ingest): a name-based UUID, version 5 (RFC 9562
 * section 5.5, SHA-1), of the caller's id in a namespace of its own per user. The ledger and the aggregator dedup on
 * the event id alone, so a caller-chosen id stored as given would be global: one tenant could pre-submit an id that
 * another later sends, and the second would be dropped as a duplicate (issue 14, finding 5). Scoped, the same caller
 * id from two users gives two stored ids (both billed), and from one user always the same stored id (billed once,
 * whenever it is resent). See docs/adr/0054-caller-scoped-ids-and-batch-rules.md.
 *
 * <pre>
 * userNamespace = UUIDv5(TOKENMETER_USERS, userId as UTF-8)
 * storedEventId = UUIDv5(userNamespace, callerEventId in canonical lower-case form)
 * </pre>
 */
public final class CallerEventIds {

    /** The namespace of the per-user namespaces; a fixed random UUID, part of the contract (never change it). */
    public static final UUID TOKENMETER_USERS = UUID.fromString("5f1c7a2e-8d4b-4e3a-9c61-0b7f2d9e4a13");

    private CallerEventIds() {
    }

    /** The namespace of {@code userId}'s caller-chosen ids. */
    public static UUID userNamespace(String userId) {
        return nameUuidV5(TOKENMETER_USERS, userId);
    }

    /**
     * The event id stored for {@code callerEventId} (a UUID, in any letter case) sent by {@code userId}.
     *
     * @throws IllegalArgumentException when {@code callerEventId} is not a UUID
     */
    public static String stored(String userId, String callerEventId) {
        UUID caller = UUID.fromString(callerEventId); // canonical form: the same id in upper case is the same id
        return nameUuidV5(userNamespace(userId), caller.toString().toLowerCase(Locale.ROOT)).toString();
    }

    /** RFC 9562 UUIDv5: SHA-1 of the namespace's 16 bytes and the name's UTF-8 bytes, version 5, variant 10. */
    static UUID nameUuidV5(UUID namespace, String name) {
        MessageDigest sha1;
        try {
            sha1 = MessageDigest.getInstance("SHA-1");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-1 is a required JDK algorithm", e);
        }
        sha1.update(ByteBuffer.allocate(16).putLong(namespace.getMostSignificantBits())
                .putLong(namespace.getLeastSignificantBits()).array());
        byte[] h = sha1.digest(name.getBytes(StandardCharsets.UTF_8));
        h[6] = (byte) ((h[6] & 0x0f) | 0x50);
        h[8] = (byte) ((h[8] & 0x3f) | 0x80);
        ByteBuffer b = ByteBuffer.wrap(h, 0, 16);
        return new UUID(b.getLong(), b.getLong());
    }
}
