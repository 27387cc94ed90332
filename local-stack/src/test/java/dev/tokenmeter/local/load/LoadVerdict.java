package dev.tokenmeter.local.load;

import java.util.ArrayList;
import java.util.List;

/**
 * Whether a load run passed, a pure function of what it saw: it fails on any answer other than the demo's designed
 * ones (2xx, and 429 for the users whose credit or rate limit runs out; in the burst also 503, the edge's answer when
 * it cannot take more — both must carry Retry-After unless they say not to retry, which the program counts into
 * {@code ruleFailures}), on a
 * request that was never answered (a hang ends at the client's 30 s timeout), on a consumer lag that did not drain in
 * time, on a failed exact check, or on a scenario's own rule ({@link LoadRules}, {@link MemoryBudget}).
 */
record LoadVerdict(List<String> failures) {

    boolean passed() {
        return failures.isEmpty();
    }

    static LoadVerdict of(LoadTally.Snapshot total, long sent, boolean lagDrained, boolean checksOk) {
        return of(total, sent, lagDrained, checksOk, false, List.of());
    }

    static LoadVerdict of(LoadTally.Snapshot total, long sent, boolean lagDrained, boolean checksOk, boolean allow503,
                          List<String> ruleFailures) {
        List<String> failures = new ArrayList<>();
        long undesigned = (allow503 ? 0 : total.count(LoadTally.StatusClass.S503)) + total.count(LoadTally.StatusClass.OTHER);
        if (undesigned > 0) {
            failures.add(undesigned + " answers other than 2xx/429" + (allow503 ? "/503" : "") + " (503: "
                    + total.count(LoadTally.StatusClass.S503) + ", other: " + total.count(LoadTally.StatusClass.OTHER) + ")");
        }
        long transport = total.count(LoadTally.StatusClass.TRANSPORT_ERROR);
        if (transport > 0) {
            failures.add(transport + " requests failed without an answer (timeout or connection error)");
        }
        if (total.answers() != sent) {
            failures.add("sent " + sent + " requests but recorded " + total.answers() + " outcomes");
        }
        if (total.count(LoadTally.StatusClass.S2XX) == 0) {
            failures.add("no request succeeded");
        }
        if (!lagDrained) {
            failures.add("consumer lag did not drain in time");
        }
        if (!checksOk) {
            failures.add("an exact check failed (see above)");
        }
        failures.addAll(ruleFailures);
        return new LoadVerdict(List.copyOf(failures));
    }
}
