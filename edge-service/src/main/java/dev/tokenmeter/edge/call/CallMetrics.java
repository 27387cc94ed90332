package dev.tokenmeter.edge.call;

import java.time.Duration;

/** What a metered call reports to the edge's meters about its quota decision (the proxy's EdgeMetrics). */
public interface CallMetrics {

    /** Records nothing: the metering API's reservations are not the proxy's calls. */
    CallMetrics NONE = new CallMetrics() {
        @Override
        public void decision(Duration d) {
        }

        @Override
        public void failOpenAdmission() {
        }
    };

    /** How long the quota engine took to decide. */
    void decision(Duration d);

    /** A call admitted without Redis under the fail-open policy. */
    void failOpenAdmission();
}
