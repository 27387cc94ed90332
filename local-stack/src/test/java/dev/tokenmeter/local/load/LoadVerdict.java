package dev.tokenmeter.local.load;

import java.util.ArrayList;
import java.util.List;

/**
 * Whether a load run passed, a pure function of what it saw: it fails on any answer other than the demo's designed
 * ones (2xx, and 429 for the users whose credit or rate limit runs out), on a request that was never answered, on a
 * consumer lag that did not drain in time, or on a failed exact check. A too-short or growing flatness verdict is
 * reported, not failed on, in this first version: a 2-minute run is mostly the JVMs warming up.
 */
record LoadVerdict(List<String> failures) {

    boolean passed() {
        return failures.isEmpty();
    }

    static LoadVerdict of(LoadTally.Snapshot total, long sent, boolean lagDrained, boolean checksOk) {
        List<String> failures = new ArrayList<>();
        long undesigned = total.count(LoadTally.StatusClass.S503) + total.count(LoadTally.StatusClass.OTHER);
        if (undesigned > 0) {
            failures.add(undesigned + " answers other than 2xx/429 (503: " + total.count(LoadTally.StatusClass.S503)
                    + ", other: " + total.count(LoadTally.StatusClass.OTHER) + ")");
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
        return new LoadVerdict(List.copyOf(failures));
    }
}
