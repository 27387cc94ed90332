package dev.tokenmeter.local;

import dev.tokenmeter.testkit.ChildJvm;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.openai.FakeOpenAi;

import java.io.PrintStream;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
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

    /** A user and the service API key it calls with. */
    public record Caller(String userId, String apiKey) {
    }

    /** The exact checks' outcome: {@code ok} and the lines that explain it. */
    public record Checks(boolean drained, boolean ok, List<String> lines, long ledgerRows) {
    }

    private final Stack stack;
    private final List<Caller> callers;

    private LoadTarget(Stack stack, List<Caller> callers) {
        this.stack = stack;
        this.callers = callers;
    }

    /** Starts the stack (each service from its shipped jar) and seeds the demo's users, ids prefixed by {@code prefix}. */
    public static LoadTarget start(Engines engines, FakeOpenAi upstream, Path workDir, PrintStream out, String prefix)
            throws Exception {
        Stack stack = Stack.start(engines, upstream, workDir, out, prefix);
        try {
            DemoData.Seeded demo = DemoData.seed(stack.jdbcUrl(), stack.dbUser(), stack.dbPassword(), stack.kafka(),
                    stack.topics(), prefix);
            demo.callers().forEach(c -> out.println("user " + c.userId() + ": " + demo.describe(c.userId())));
            return new LoadTarget(stack, demo.callers().stream().map(c -> new Caller(c.userId(), c.apiKey())).toList());
        } catch (Exception | Error e) {
            stack.close();
            throw e;
        }
    }

    public List<Caller> callers() {
        return callers;
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
