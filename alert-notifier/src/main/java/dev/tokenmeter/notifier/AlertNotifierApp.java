package dev.tokenmeter.notifier;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.tokenmeter.config.ServiceLogging;
import dev.tokenmeter.db.Migrations;
import dev.tokenmeter.events.serde.EventSerdes;
import dev.tokenmeter.events.topic.Topics;
import dev.tokenmeter.notifier.consume.AlertConsumer;
import dev.tokenmeter.notifier.delivery.Deliveries;
import dev.tokenmeter.notifier.delivery.DeliveryLog;
import dev.tokenmeter.notifier.delivery.WebhookSender;
import dev.tokenmeter.notifier.webhook.WebhookAdminApi;
import dev.tokenmeter.notifier.webhook.WebhookStore;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.conf.Settings;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * The alert-notifier: reads {@code usage-alerts} and delivers each alert to the enabled webhooks of its tenant
 * (Postgres {@code webhook}), signed, retried with backoff, once per alert and webhook ({@code webhook_delivery}),
 * dead-lettered ({@code webhook_dead_letter}) when its retry window runs out. Serves the admin API that registers
 * the webhooks. Never migrates: checks the schema version at start-up, waiting for the database.
 */
public final class AlertNotifierApp implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(AlertNotifierApp.class);

    private final HikariDataSource dataSource;
    private final Deliveries deliveries;
    private final AlertConsumer consumer;
    private final Thread consumerThread;
    private final WebhookAdminApi admin;

    public AlertNotifierApp(NotifierConfig config, Topics topics, Clock clock) throws IOException {
        this.dataSource = dataSource(config);
        Migrations.awaitCurrent(dataSource, Duration.ofSeconds(30));
        DSLContext db = DSL.using(dataSource, SQLDialect.POSTGRES, new Settings().withExecuteLogging(false));
        WebhookStore webhooks = new WebhookStore(db);
        DeliveryLog deliveryLog = new DeliveryLog(db);
        this.deliveries = new Deliveries(webhooks, deliveryLog, new WebhookSender(config.delivery(), clock), config.delivery(), clock);
        this.consumer = new AlertConsumer(kafkaConsumer(config), topics.alerts().name(),
                EventSerdes.usageAlert().deserializer(), deliveries, config.maxPendingAlerts());
        this.consumerThread = Thread.ofPlatform().name("notifier-consumer").unstarted(consumer);
        this.admin = config.adminPort() >= 0
                ? new WebhookAdminApi(config.adminHost(), config.adminPort(), config.adminToken(), webhooks, deliveryLog)
                : null;
    }

    public AlertNotifierApp start() {
        if (admin != null) {
            admin.start();
        }
        consumerThread.start();
        return this;
    }

    /** The admin API's port (-1 when it is off). */
    public int adminPort() {
        return admin == null ? -1 : admin.port();
    }

    public static void main(String[] args) throws Exception {
        ServiceLogging.check(System.getenv());
        NotifierConfig config = NotifierConfig.fromEnv(System.getenv());
        Topics topics = Topics.fromEnv(System.getenv());
        log.info("starting alert-notifier with {}", config);
        AlertNotifierApp app = new AlertNotifierApp(config, topics, Clock.systemUTC()).start();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log.info("shutting down");
            app.close();
            stopped.countDown();
        }, "notifier-shutdown"));
        log.info("READY group={} topic={} admin port {}", config.groupId(), topics.alerts().name(),
                app.adminPort() < 0 ? "off" : app.adminPort());
        stopped.await();
    }

    /** Stops the admin API and the consumer (committing what is finished); deliveries in flight are read again later. */
    @Override
    public void close() {
        if (admin != null) {
            admin.close();
        }
        deliveries.stop();
        consumer.close();
        try {
            consumerThread.join(Duration.ofSeconds(30));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        dataSource.close();
    }

    private static KafkaConsumer<byte[], byte[]> kafkaConsumer(NotifierConfig config) {
        Map<String, Object> props = new HashMap<>(config.kafka().clientProperties());
        props.put(ConsumerConfig.GROUP_ID_CONFIG, config.groupId());
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, config.groupId());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 500);
        // Static membership: a restarted instance takes its partitions back at once.
        props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, config.instanceId());
        props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 30_000);
        return new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    private static HikariDataSource dataSource(NotifierConfig config) {
        HikariConfig hikari = new HikariConfig();
        hikari.setJdbcUrl(config.databaseUrl());
        hikari.setUsername(config.databaseUser());
        hikari.setPassword(config.databasePassword());
        hikari.setMaximumPoolSize(config.databasePoolSize());
        hikari.setPoolName("alert-notifier");
        hikari.setInitializationFailTimeout(-1);
        hikari.setConnectionTimeout(5_000);
        return new HikariDataSource(hikari);
    }
}
