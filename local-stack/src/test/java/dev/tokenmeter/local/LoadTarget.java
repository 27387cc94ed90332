package dev.tokenmeter.local;

import dev.tokenmeter.edge.auth.ApiKeys;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.openai.FakeOpenAi;

import java.io.PrintStream;
import java.net.URI;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The local stack as the load program (issue 20, {@code load.LoadProgram}) sees it: {@link Stack} started as the
 * end-to-end tests start it, the demo's users seeded, and the end-to-end tests' exact checks ({@link Reconciliation}).
 * Public only because the load program lives in its own package; it adds no behaviour of its own.
 */
public final class LoadTarget implements AutoCloseable {

    private static final int UNLIMITED_USERS = 4;

    /** A user and the service API key it calls with. */
    public record Caller(String userId, String apiKey) {
    }

    /** The exact checks' outcome: {@code ok} and the lines that explain it. */
    public record Checks(boolean drained, boolean ok, List<String> lines, long ledgerRows) {
    }

    private final Stack stack;
    private final List<Caller> callers;
    private final List<Caller> unlimitedCallers;

    private LoadTarget(Stack stack, List<Caller> callers, List<Caller> unlimitedCallers) {
        this.stack = stack;
        this.callers = callers;
        this.unlimitedCallers = unlimitedCallers;
    }

    /**
     * Users for the closed-loop maximum: the demo's plans cap every user at 600 requests and 400,000 tokens a minute
     * and small credits, so a closed loop over the demo users measures mostly fast 429s. These have limits no run
     * reaches ($1,000 of credit, 10^7 requests and 10^10 tokens a minute); four of them, so the quota keys of one user
     * are not the only ones hot.
     */
    private static List<Caller> seedUnlimited(Stack stack, String prefix) throws SQLException {
        List<Caller> callers = new ArrayList<>();
        try (Connection db = DriverManager.getConnection(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword())) {
            for (int i = 1; i <= UNLIMITED_USERS; i++) {
                String userId = prefix + "load-" + i;
                try (PreparedStatement account = db.prepareStatement("INSERT INTO account (user_id, tenant_id, plan_id,"
                        + " monthly_credit_override_nano_usd, requests_per_minute_override, tokens_per_minute_override)"
                        + " VALUES (?, 'load', 'pro', ?, 10000000, 10000000000)")) {
                    account.setString(1, userId);
                    account.setLong(2, Money.parseUsd("1000"));
                    account.executeUpdate();
                }
                ApiKeys.IssuedKey key = ApiKeys.issue();
                try (PreparedStatement apiKey = db.prepareStatement(
                        "INSERT INTO api_key (api_key_id, user_id, key_prefix, salt, key_hash) VALUES (?, ?, ?, ?, ?)")) {
                    apiKey.setString(1, "key-" + userId + "-" + key.prefix());
                    apiKey.setString(2, userId);
                    apiKey.setString(3, key.prefix());
                    apiKey.setObject(4, key.salt());
                    apiKey.setObject(5, key.hash());
                    apiKey.executeUpdate();
                }
                callers.add(new Caller(userId, key.key()));
            }
        }
        return List.copyOf(callers);
    }

    /** Starts the stack (each service from its shipped jar) and seeds the demo's users, ids prefixed by {@code prefix}. */
    public static LoadTarget start(Engines engines, FakeOpenAi upstream, Path workDir, PrintStream out, String prefix)
            throws Exception {
        return start(engines, upstream, workDir, out, prefix, 0);
    }

    /** {@link #start(Engines, FakeOpenAi, Path, PrintStream, String)} with the edge's MAX_CALLS_IN_FLIGHT (0: its default). */
    public static LoadTarget start(Engines engines, FakeOpenAi upstream, Path workDir, PrintStream out, String prefix,
                                   int edgeMaxCallsInFlight) throws Exception {
        Stack stack = Stack.start(engines, upstream, workDir, out, prefix, (service, env) -> {
            if (edgeMaxCallsInFlight > 0 && service.equals(Stack.EDGE_JAR)) {
                env.put("MAX_CALLS_IN_FLIGHT", Integer.toString(edgeMaxCallsInFlight));
            }
        });
        try {
            DemoData.Seeded demo = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(), stack.kafka(),
                    stack.topics(), prefix);
            demo.callers().forEach(c -> out.println("user " + c.userId() + ": " + demo.describe(c.userId())));
            List<Caller> unlimited = seedUnlimited(stack, prefix);
            return new LoadTarget(stack, demo.callers().stream().map(c -> new Caller(c.userId(), c.apiKey())).toList(),
                    unlimited);
        } catch (Exception | Error e) {
            stack.close();
            throw e;
        }
    }

    /** The demo's users: some are refused by design (429s). */
    public List<Caller> callers() {
        return callers;
    }

    /** Users no run reaches the limits of, for the closed-loop maximum. */
    public List<Caller> unlimitedCallers() {
        return unlimitedCallers;
    }

    public URI edgeUrl() {
        return stack.edgeUrl();
    }

    /** Each service's process id, by name (edge-service, aggregator-streams, billing-sink). */
    public Map<String, Long> pids() {
        Map<String, Long> pids = new LinkedHashMap<>();
        for (ChildJvm jvm : List.of(stack.edge, stack.aggregator, stack.sink)) {
            pids.put(jvm.name(), jvm.pid());
        }
        return pids;
    }

    /** Consumer groups whose lag is watched: aggregator and sink, by those names. */
    public Map<String, String> consumerGroups() {
        return Map.of("aggregator", stack.aggregatorGroupId(), "sink", stack.sinkGroupId());
    }

    /** Postgres login per service that has one (edge-service, billing-sink). */
    public Map<String, String> databaseUsers() {
        return stack.databaseUsers();
    }

    public Path spoolDir() {
        return stack.spoolDir();
    }

    public Map<String, Object> kafka() {
        return stack.kafka();
    }

    public String jdbcUrl() {
        return stack.jdbcUrl();
    }

    public String dbUser() {
        return stack.dbUser();
    }

    public String dbPassword() {
        return stack.dbPassword();
    }

    /**
     * The end-to-end tests' checks ({@code PipelineFaultsIT}): waits (bounded) until every answered call's event is in
     * the ledger and the totals agree, then every event id once, ledger = monthly = Σ hourly per user, model and key
     * source, reconciliation view zero.
     */
    public Checks check(long sent, Set<String> eventIds, Duration timeout, PrintStream out) throws Exception {
        Reconciliation reconciliation = new Reconciliation(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword());
        DemoTraffic.Report report = new DemoTraffic.Report(sent, Map.of(), Map.of(), eventIds, 0);
        boolean drained = reconciliation.awaitDrained(report, timeout, out);
        Reconciliation.Verdict verdict = reconciliation.verdict(report);
        return new Checks(drained, drained && verdict.ok(), verdict.lines(), verdict.ledgerRows());
    }

    @Override
    public void close() {
        stack.close();
    }
}
