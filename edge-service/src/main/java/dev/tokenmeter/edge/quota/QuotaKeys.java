package dev.tokenmeter.edge.quota;

import java.time.YearMonth;
import java.util.UUID;

/**
 * Redis key names. Every key of one user starts with the hash tag {@code {u:<userId>}}, so all of a
 * user's keys live in one Cluster slot and every script runs unchanged on Redis Cluster. A reservation
 * id is {@code {u:<userId>}:<yyyy-MM>:<r|l>:<uuid>}: the tag and the month let settle/release find the
 * keys from the id alone; {@code r} = decided in Redis, {@code l} = decided by the local fail-open limiter.
 */
record QuotaKeys(String userId) {

    String tag() {
        return "{u:" + userId + "}";
    }

    String reservations() { return tag() + ":res"; }
    String deadlines() { return tag() + ":res:dl"; }
    String purge() { return tag() + ":res:gc"; }
    String reserved() { return tag() + ":reserved"; }
    String rebuildLock() { return tag() + ":rebuild"; }
    String settled(YearMonth m) { return tag() + ":m:" + m + ":settled"; }
    String personal(YearMonth m) { return tag() + ":m:" + m + ":personal"; }
    String thresholds(YearMonth m) { return tag() + ":m:" + m + ":thr"; }
    String userRequests() { return tag() + ":rl:req"; }
    String userTokens() { return tag() + ":rl:tok"; }
    String keyRequests(String apiKeyId) { return tag() + ":rl:k:" + apiKeyId + ":req"; }
    String keyTokens(String apiKeyId) { return tag() + ":rl:k:" + apiKeyId + ":tok"; }

    String newReservationId(YearMonth m, boolean local) {
        return tag() + ":" + m + ":" + (local ? "l" : "r") + ":" + UUID.randomUUID();
    }

    /** A parsed reservation id. */
    record ReservationId(String id, String userId, YearMonth month, boolean local) {}

    static ReservationId parse(String id) {
        if (id != null && id.startsWith("{u:")) {
            int close = id.indexOf("}:");
            if (close > 3) {
                String[] rest = id.substring(close + 2).split(":", -1);
                if (rest.length == 3 && (rest[1].equals("r") || rest[1].equals("l"))) {
                    try {
                        UUID.fromString(rest[2]);
                        return new ReservationId(id, id.substring(3, close), YearMonth.parse(rest[0]), rest[1].equals("l"));
                    } catch (RuntimeException ignored) {
                        // falls through to the error below
                    }
                }
            }
        }
        throw new IllegalArgumentException("reservationId is not one issued by QuotaEngine.reserve: '"
                + (id == null ? "null" : id.substring(0, Math.min(id.length(), 120))) + "'");
    }
}
