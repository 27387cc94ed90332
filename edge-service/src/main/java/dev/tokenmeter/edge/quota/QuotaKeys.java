package dev.tokenmeter.edge.quota;

import java.time.YearMonth;
import java.util.UUID;

/**
 * Redis key names. Every key of one user starts with the hash tag {@code {u:<userId>}}, so all of a
 * user's keys live in one Cluster slot and every script runs unchanged on Redis Cluster. A reservation
 * id is {@code {u:<userId>}:<yyyy-MM>:<r|l>:<uuid>}: the tag and the month let settle/release find the
 * keys from the id alone; {@code r} = decided in Redis, {@code l} = decided by the local fail-open limiter,
 * {@code d} = decided in Postgres while Redis was unavailable (FAIL_TO_DATABASE, ADR 0072).
 */
record QuotaKeys(String userId, String tag) {

    QuotaKeys(String userId) {
        this(userId, "{u:" + userId + "}");
    }

    String reservations() { return tag() + ":res"; }
    String deadlines() { return tag() + ":res:dl"; }
    String purge() { return tag() + ":res:gc"; }
    String reserved() { return tag() + ":reserved"; }
    String rebuildLock() { return tag() + ":rebuild"; }
    String handover(YearMonth m) { return tag() + ":m:" + m + ":handover"; }
    String settled(YearMonth m) { return tag() + ":m:" + m + ":settled"; }
    String personal(YearMonth m) { return tag() + ":m:" + m + ":personal"; }
    String thresholds(YearMonth m) { return tag() + ":m:" + m + ":thr"; }
    String userRequests() { return tag() + ":rl:req"; }
    String userTokens() { return tag() + ":rl:tok"; }
    String keyRequests(String apiKeyId) { return tag() + ":rl:k:" + apiKeyId + ":req"; }
    String keyTokens(String apiKeyId) { return tag() + ":rl:k:" + apiKeyId + ":tok"; }
    /**
     * The user's key-budget hash (ADR 0081): field {@code <yyyy-MM>:<apiKeyId>} = the key's service-credit spend that
     * month (settled plus open estimates). One hash under the user's tag, so every script that frees a reservation
     * (expiry included) can declare it whatever the reservation's key.
     */
    String keyBudgets() { return tag() + ":kb"; }
    static String keyBudgetField(YearMonth m, String apiKeyId) { return m + ":" + apiKeyId; }

    /**
     * A tenant's keys (tenant budget, ADR 0081), all under the hash tag {@code {t:<tenantId>}}: its own slot, since the
     * tenant's users hash to many. {@code spend}: field {@code <yyyy-MM>} = the tenant's service-credit spend that month
     * (settled plus open estimates); {@code reservations}: record per user reservation id; deadlines and purge zsets.
     */
    record Tenant(String tenantId, String tag) {
        Tenant(String tenantId) {
            this(tenantId, "{t:" + tenantId + "}");
        }

        String spend() { return tag() + ":spend"; }
        String reservations() { return tag() + ":res"; }
        String deadlines() { return tag() + ":res:dl"; }
        String purge() { return tag() + ":res:gc"; }
        String[] all() { return new String[]{spend(), reservations(), deadlines(), purge()}; }
    }

    /**
     * A new reservation id {@code <tag>:<yyyy-MM>:<r|l>:<apiKeyId>:<uuid>}. The API key is in the id so that
     * settle and release can declare the key's token-rate key (they get nothing but the id).
     */
    String newReservationId(YearMonth m, String apiKeyId, boolean local) {
        return newReservationId(m, apiKeyId, local ? 'l' : 'r');
    }

    /** A new reservation id decided where {@code origin} says: {@code r} Redis, {@code l} local, {@code d} database. */
    String newReservationId(YearMonth m, String apiKeyId, char origin) {
        return reservationId(m, apiKeyId, origin, UUID.randomUUID().toString());
    }

    /** The reservation id ending in {@code uuid} (a name-based one: a batch's reservation, ADR 0087). */
    String reservationId(YearMonth m, String apiKeyId, char origin, String uuid) {
        return tag() + ":" + m + ":" + origin + ":" + apiKeyId + ":" + uuid;
    }

    /**
     * A parsed reservation id; {@code apiKeyId} is null for ids issued before the key was part of the id
     * ({@code <tag>:<yyyy-MM>:<r|l>:<uuid>}), which still settle and release (without the key's token true-up).
     */
    record ReservationId(String id, String userId, YearMonth month, char origin, String apiKeyId) {
        boolean local() { return origin == 'l'; }
        /** Decided in Postgres: its record is a quota_db_reservation row until handed over to Redis. */
        boolean database() { return origin == 'd'; }
    }

    static ReservationId parse(String id) {
        if (id != null && id.startsWith("{u:")) {
            int close = id.indexOf("}:");
            // after the tag: yyyy-MM ':' r|l|d ':' [apiKeyId ':'] uuid
            if (close > 3 && id.length() >= close + 2 + 10 + 36 && id.charAt(close + 9) == ':' && id.charAt(close + 11) == ':') {
                char flag = id.charAt(close + 10);
                String rest = id.substring(close + 12);
                int lastColon = rest.lastIndexOf(':');
                String apiKeyId = lastColon < 0 ? null : rest.substring(0, lastColon);
                String uuid = rest.substring(lastColon + 1);
                if ((flag == 'r' || flag == 'l' || flag == 'd') && uuid.length() == 36) {
                    try {
                        UUID.fromString(uuid);
                        if (apiKeyId != null) QuotaLimits.id("apiKeyId", apiKeyId);
                        return new ReservationId(id, id.substring(3, close), month(id, close + 2), flag, apiKeyId);
                    } catch (RuntimeException ignored) {
                        // falls through to the error below
                    }
                }
            }
        }
        throw new IllegalArgumentException("reservationId is not one issued by QuotaEngine.reserve: '"
                + (id == null ? "null" : id.substring(0, Math.min(id.length(), 120))) + "'");
    }

    /** {@code yyyy-MM} at {@code from} (YearMonth.parse goes through a DateTimeFormatter: slow on every settle). */
    private static YearMonth month(String id, int from) {
        if (id.charAt(from + 4) != '-') throw new IllegalArgumentException("no month");
        for (int i : new int[]{0, 1, 2, 3, 5, 6}) {
            if (!Character.isDigit(id.charAt(from + i))) throw new IllegalArgumentException("no month");
        }
        return YearMonth.of(Integer.parseInt(id, from, from + 4, 10), Integer.parseInt(id, from + 5, from + 7, 10));
    }
}
