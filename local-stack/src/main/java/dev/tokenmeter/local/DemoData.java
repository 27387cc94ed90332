package dev.tokenmeter.local;

import dev.tokenmeter.edge.auth.ApiKeys;
import dev.tokenmeter.edge.crypto.PersonalKeyCipher;
import dev.tokenmeter.events.UserLimit;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.events.topic.Topics;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Demo plans, users and keys, chosen so that a short run shows every route: a user with plenty of
 * credit, one who runs out and falls back to their own OpenAI key, one who runs out and is rejected,
 * one who hits the rate limit, and one who crosses the 50/80/100% alert thresholds.
 */
final class DemoData {

    static final String MASTER_KEY_ID = "demo-2026";
    /** A fixed demo master key (32 bytes). Never use a key from source code outside the demo. */
    static final String MASTER_KEY_BASE64 = "ZGVtby1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";

    /** The tenant of the user whose small credit crosses the alert thresholds: the demo registers its webhook. */
    static final String ALERTING_TENANT = "initech";

    record DemoUser(String userId, String tenantId, String planId, Long creditOverrideNanoUsd, Integer rpmOverride,
                    boolean ownKey, String story) {
    }

    record Seeded(List<DemoTraffic.Caller> callers, Map<String, DemoUser> users) {
        String describe(String userId) {
            return users.get(userId).story();
        }
    }

    static final List<DemoUser> USERS = List.of(
            new DemoUser("alice", "acme", "pro", null, null, false, "pro plan, plenty of credit"),
            new DemoUser("bob", "acme", "starter", null, null, true, "small credit, falls back to own OpenAI key"),
            new DemoUser("carol", "globex", "starter", null, null, false, "small credit, no own key: rejected when out"),
            new DemoUser("dave", "globex", "pro", null, 90, false, "90 requests/minute: hits the rate limit"),
            new DemoUser("erin", "initech", "pro", Money.parseUsd("0.006"), null, false, "$0.006 credit: crosses 50/80/100% alerts"));

    private DemoData() {
    }

    /**
     * Demo tier prices (issue 16, ADR 0068), since no tier price is seeded by the migrations: o3 at flex and gpt-4o-mini
     * at priority, at OpenAI's published 2025 list prices for those tiers ($1.00/$0.25/$4.00 and $0.25/$0.125/$1.00
     * per 1M input/cached/output tokens), from the standard rows' dates. Seeded as the schema's owner, like V3.
     */
    static void seedTierPrices(String jdbcUrl, String user, String password) {
        try (Connection db = DriverManager.getConnection(jdbcUrl, user, password)) {
            String insert = "INSERT INTO model_price (model, service_tier, effective_from, input_nano_usd_per_token, "
                    + "cached_input_nano_usd_per_token, output_nano_usd_per_token, price_version) VALUES (?, ?, ?::timestamptz, ?, ?, ?, ?) "
                    + "ON CONFLICT DO NOTHING";
            execute(db, insert, "o3", "flex", "2025-06-10T00:00:00Z", 1000L, 250L, 4000L, "o3@2025-06-10:flex");
            execute(db, insert, "gpt-4o-mini", "priority", "2024-07-18T00:00:00Z", 250L, 125L, 1000L, "gpt-4o-mini@2024-07-18:priority");
        } catch (SQLException e) {
            throw new IllegalStateException("seeding the demo tier prices failed: " + e.getMessage(), e);
        }
    }

    static Seeded seed(String jdbcUrl, String user, String password, Map<String, Object> kafka, Topics topics) throws SQLException {
        return seed(jdbcUrl, user, password, kafka, topics, "");
    }

    /** Seeds the demo users with ids prefixed by {@code userPrefix} (tests share one Redis). */
    static Seeded seed(String jdbcUrl, String user, String password, Map<String, Object> kafka, Topics topics,
                       String userPrefix) throws SQLException {
        return seed(jdbcUrl, user, password, kafka, topics, userPrefix, USERS);
    }

    /** Seeds {@code users} (on the demo plans) instead of the demo's five; a drill picks its own credit limits. */
    static Seeded seed(String jdbcUrl, String user, String password, Map<String, Object> kafka, Topics topics,
                       String userPrefix, List<DemoUser> users) throws SQLException {
        PersonalKeyCipher cipher = new PersonalKeyCipher(MASTER_KEY_ID, MASTER_KEY_BASE64);
        List<DemoTraffic.Caller> callers = new ArrayList<>();
        Map<String, DemoUser> byId = new LinkedHashMap<>();
        try (Connection db = DriverManager.getConnection(jdbcUrl, user, password)) {
            db.setAutoCommit(false);
            execute(db, "INSERT INTO plan (plan_id, display_name, monthly_credit_nano_usd, requests_per_minute, tokens_per_minute) "
                    + "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", "pro", "Pro", Money.parseUsd("2.00"), 600, 400_000L);
            execute(db, "INSERT INTO plan (plan_id, display_name, monthly_credit_nano_usd, requests_per_minute, tokens_per_minute) "
                    + "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", "starter", "Starter", Money.parseUsd("0.003"), 600, 400_000L);
            for (DemoUser template : users) {
                DemoUser u = new DemoUser(userPrefix + template.userId(), template.tenantId(), template.planId(),
                        template.creditOverrideNanoUsd(), template.rpmOverride(), template.ownKey(), template.story());
                execute(db, "INSERT INTO account (user_id, tenant_id, plan_id, monthly_credit_override_nano_usd, requests_per_minute_override) "
                        + "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", u.userId(), u.tenantId(), u.planId(),
                        u.creditOverrideNanoUsd(), u.rpmOverride());
                ApiKeys.IssuedKey key = ApiKeys.issue();
                execute(db, "INSERT INTO api_key (api_key_id, user_id, key_prefix, salt, key_hash) VALUES (?, ?, ?, ?, ?)",
                        "key-" + u.userId() + "-" + key.prefix(), u.userId(), key.prefix(), key.salt(), key.hash());
                if (u.ownKey()) {
                    String ownKey = "sk-own-" + u.userId() + "-demo-key-0000";
                    PersonalKeyCipher.Sealed sealed = cipher.seal(u.userId(), "openai", ownKey);
                    execute(db, "INSERT INTO personal_provider_key (user_id, provider, key_ciphertext, key_nonce, master_key_id, key_last4) "
                            + "VALUES (?, 'openai', ?, ?, ?, ?)", u.userId(), sealed.ciphertext(), sealed.nonce(),
                            sealed.masterKeyId(), ownKey.substring(ownKey.length() - 4));
                }
                callers.add(new DemoTraffic.Caller(u.userId(), key.key()));
                byId.put(u.userId(), u);
            }
            db.commit();
        }
        publishLimits(jdbcUrl, user, password, kafka, topics);
        return new Seeded(callers, byId);
    }

    /** The aggregator raises credit alerts from the compacted user-limits topic; the admin API keeps it current. */
    private static void publishLimits(String jdbcUrl, String user, String password, Map<String, Object> kafka,
                                      Topics topics) throws SQLException {
        Map<String, Object> props = new java.util.HashMap<>(kafka);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        try (Connection db = DriverManager.getConnection(jdbcUrl, user, password);
             var rs = db.createStatement().executeQuery("SELECT user_id, tenant_id, monthly_credit_nano_usd FROM account_limits");
             KafkaProducer<String, UserLimit> producer = new KafkaProducer<>(props,
                     topics.userLimits().keySerde().serializer(), topics.userLimits().valueSerde().serializer())) {
            while (rs.next()) {
                UserLimit limit = UserLimit.newBuilder()
                        .setUserId(rs.getString(1)).setTenantId(rs.getString(2))
                        .setMonthlyCreditNanoUsd(rs.getLong(3)).setUpdatedAt(Instant.now()).build();
                producer.send(new ProducerRecord<>(topics.userLimits().name(), limit.getUserId(), limit));
            }
            producer.flush();
        }
    }

    private static void execute(Connection db, String sql, Object... params) throws SQLException {
        try (PreparedStatement statement = db.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) {
                statement.setObject(i + 1, params[i]);
            }
            statement.executeUpdate();
        }
    }
}
