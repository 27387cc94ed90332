package dev.tokenmeter.events.publish;

import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.events.validate.InvalidUsageEventException;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.KafkaEngine;
import dev.tokenmeter.testkit.Names;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

@ExtendWith(EnginesExtension.class)
class UsageEventPublisherIT {

    @Test
    void publishesKeyedByUserInOrderAndDecodable(KafkaEngine kafka) {
        Topics topics = Topics.withPrefix(Names.unique("pub") + ".", 3);
        kafka.createTopic(topics.usageEvents().name(), 3);
        List<UsageEvent> sent = new ArrayList<>();
        try (UsageEventPublisher publisher = UsageEventPublisher.builder()
                .connection(kafka.clientProperties()).topic(topics.usageEvents()).build()) {
            List<CompletableFuture<?>> acks = new ArrayList<>();
            for (int i = 0; i < 300; i++) {
                UsageEvent e = event("user-" + (i % 7), i);
                sent.add(e);
                acks.add(publisher.publish(e));
            }
            CompletableFuture.allOf(acks.toArray(CompletableFuture[]::new)).join();
        }

        Map<String, List<Long>> costsByUser = new HashMap<>();
        Map<String, Integer> partitionOfUser = new HashMap<>();
        try (KafkaConsumer<String, UsageEvent> consumer = new KafkaConsumer<>(kafka.clientProperties(Map.of(ConsumerConfig.GROUP_ID_CONFIG, Names.unique("reader"),
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest")),
                topics.usageEvents().keySerde().deserializer(), topics.usageEvents().valueSerde().deserializer())) {
            consumer.subscribe(List.of(topics.usageEvents().name()));
            List<ConsumerRecord<String, UsageEvent>> received = new ArrayList<>();
            await("all 300 events consumed").atMost(Duration.ofSeconds(30)).until(() -> {
                consumer.poll(Duration.ofMillis(200)).forEach(received::add);
                return received.size() >= 300;
            });
            for (ConsumerRecord<String, UsageEvent> r : received) {
                assertThat(r.key()).isEqualTo(r.value().getUserId());
                assertThat(partitionOfUser.computeIfAbsent(r.key(), k -> r.partition())).as("one partition per user").isEqualTo(r.partition());
                costsByUser.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value().getCostNanoUsd());
            }
            assertThat(received).extracting(ConsumerRecord::value).containsExactlyInAnyOrderElementsOf(sent);
        }
        costsByUser.values().forEach(costs -> assertThat(costs).as("per-user order kept").isSorted());
    }

    @Test
    void refusesAnInvalidEventWithoutSendingIt(KafkaEngine kafka) {
        Topics topics = Topics.withPrefix(Names.unique("pub") + ".", 1);
        kafka.createTopic(topics.usageEvents().name(), 1);
        try (UsageEventPublisher publisher = UsageEventPublisher.builder()
                .connection(kafka.clientProperties()).topic(topics.usageEvents()).build()) {
            UsageEvent bad = UsageEvent.newBuilder(event("u", 1)).setEventId("not-a-uuid").setPromptTokens(-5).build();
            assertThatThrownBy(() -> publisher.publish(bad).join())
                    .isInstanceOf(CompletionException.class)
                    .hasCauseInstanceOf(InvalidUsageEventException.class)
                    .hasMessageContaining("eventId must be a UUID")
                    .hasMessageContaining("promptTokens must be >= 0");
        }
    }

    static UsageEvent event(String user, long sequence) {
        return UsageEvent.newBuilder()
                .setEventId(UUID.randomUUID().toString())
                .setOccurredAt(Instant.now()).setReceivedAt(Instant.now())
                .setTenantId("t").setUserId(user).setKeySource(KeySource.SERVICE_CREDIT)
                .setModel("gpt-4o-mini").setEndpoint("/v1/chat/completions")
                .setOutcome(Outcome.SUCCEEDED).setHttpStatus(200)
                .setPromptTokens(10).setCompletionTokens(5).setCostNanoUsd(sequence)
                .build();
    }
}
