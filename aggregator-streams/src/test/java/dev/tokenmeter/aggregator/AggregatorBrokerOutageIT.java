package dev.tokenmeter.aggregator;

import dev.tokenmeter.testkit.kafka.EmbeddedKafkaEngine;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.awaitility.Awaitility.await;

/**
 * The aggregator's broker is stopped for longer than a send may wait (SEND_TIMEOUT 3 s) while events keep
 * arriving, and the totals are checked <b>without</b> restarting the aggregator: a total whose emission was lost
 * would stay short, as it would downstream (docs/adr/0076). Its own broker, since it stops it. Part of the
 * fault suite (Maven profile {@code faults}; {@code .ci/run} runs it), not of the default test run.
 */
class AggregatorBrokerOutageIT {

    @Test
    void totalsStayExactThroughABrokerOutageLongerThanASendMayBlock() throws Exception {
        try (EmbeddedKafkaEngine kafka = EmbeddedKafkaEngine.launch()) {
            AggregatorUnderFault.run(kafka, "outage", false, (aggregator, sender) -> {
                // One round: the failure replaces the stream thread, and the new one waits out static membership's
                // session before it gets the tasks back, so a second stop at once would find it idle.
                sender.awaitSent(200);
                kafka.stop();
                int failuresBefore = AggregatorUnderFault.failures(aggregator);
                await("the aggregator's sends or commit failed while the broker was away")
                        .atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(250))
                        .until(() -> AggregatorUnderFault.failures(aggregator) > failuresBefore);
                kafka.start();
                sender.awaitSent(400);
            });
        }
    }
}
