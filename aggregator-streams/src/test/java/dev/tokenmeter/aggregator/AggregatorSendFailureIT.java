package dev.tokenmeter.aggregator;

import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.util.List;

import static org.awaitility.Awaitility.await;

/**
 * A send that fails inside a commit interval must not cost a total an event. The aggregator — its own
 * JVM running the shipped jar, sends waiting at most 3 s (SEND_TIMEOUT) — keeps receiving events while its
 * monthly-totals topic is deleted (every emission to it times out on metadata, the task that sent it is
 * marked corrupted, Kafka Streams closes it dirty and commits the others) and recreated, twice. Its
 * totals then equal an independent sum of the distinct events, exactly: the case the fault suite's
 * KAFKA_OUTAGE hit once at random (docs/adr/0076). The broker-outage case is {@link AggregatorBrokerOutageIT}, in
 * the fault suite.
 */
@ExtendWith(EnginesExtension.class)
class AggregatorSendFailureIT {

    @Test
    void totalsStayExactWhenEmissionsFailMidInterval(KafkaEngine kafka) throws Exception {
        AggregatorUnderFault.run(kafka, "sendfail", true, (aggregator, sender) -> {
            try (Admin admin = Admin.create(kafka.clientProperties())) {
                for (int round = 0; round < 2; round++) {
                    String monthly = sender.topics.monthlyTotals().name();
                    admin.deleteTopics(List.of(monthly)).all().get();
                    int failuresBefore = AggregatorUnderFault.failures(aggregator);
                    // Events keep arriving while every emission to the monthly topic times out.
                    await("the aggregator's sends to the deleted topic failed (round " + round + ")")
                            .atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(250))
                            .until(() -> AggregatorUnderFault.failures(aggregator) > failuresBefore);
                    sender.awaitSent(300);
                    admin.createTopics(List.of(new NewTopic(monthly, 3, (short) 1))).all().get();
                    sender.awaitSent(300);
                }
            }
        });
    }
}
