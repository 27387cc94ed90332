package dev.tokenmeter.edge.quota;

import java.util.List;

/**
 * The answer to {@link QuotaEngine#settle}/{@link QuotaEngine#release}. {@code settledNanoUsd} is the
 * month's settled service-credit (or personal-key) usage after this call, -1 when not known (a
 * repeated settle, a missing counter, or Redis unavailable). An actual cost above the estimate can cross
 * a threshold or the soft limit at settle ({@code thresholdsCrossed}, {@code softLimit.crossedNow()}).
 */
public record SettleResult(String reservationId, Status status, Route route, long settledNanoUsd,
                           List<Integer> thresholdsCrossed, SoftLimitStatus softLimit) {

    static SettleResult of(String reservationId, Status status) {
        return new SettleResult(reservationId, status, null, -1, List.of(), SoftLimitStatus.UNKNOWN);
    }

    public enum Status {
        /** The estimate was replaced by the actual cost. */
        SETTLED,
        /** The reservation had expired (its estimate was freed); the actual cost was still counted. */
        SETTLED_AFTER_EXPIRY,
        /** A repeat: nothing changed. */
        ALREADY_SETTLED,
        ALREADY_RELEASED,
        RELEASED,
        /** No record (never made, or purged after the retention): nothing changed; the reconciler catches up from Postgres. */
        UNKNOWN_RESERVATION,
        /** A fail-open reservation, settled against the in-process limiter. */
        LOCAL,
        /** Redis unavailable: the reservation expires by itself, the reconciler catches up from Postgres. */
        UNAVAILABLE
    }
}
