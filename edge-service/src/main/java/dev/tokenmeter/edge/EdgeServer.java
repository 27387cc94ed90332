package dev.tokenmeter.edge;

import dev.tokenmeter.edge.proxy.OpenAiProxyHandler;
import dev.tokenmeter.edge.proxy.ProxyRoutes;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.config.RoutesConfig;
import org.eclipse.jetty.server.handler.GracefulHandler;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * The edge's HTTP server: Jetty 12, every request on a virtual thread. The proxy's routes, {@code POST
 * /v1/chat/completions}, {@code /v1/completions}, {@code /v1/embeddings} and {@code /v1/responses}, are served by a
 * core Jetty handler ({@link ProxyRoutes}); everything else by Javalin 7 behind it: {@code GET /health/live}; {@code GET /health/ready} (200 only when every
 * readiness check passes, else 503 naming the failing ones); {@code GET /metrics} (Prometheus text). Other
 * components (metering API, admin API, usage query) add their routes through {@link Builder#routes}.
 */
public final class EdgeServer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EdgeServer.class);

    private final Javalin app;
    private final OpenAiProxyHandler proxy;
    private final String host;
    private final int port;
    private final Duration shutdownTimeout;

    private EdgeServer(Builder b) {
        this.host = b.host;
        this.port = b.port;
        this.shutdownTimeout = b.shutdownTimeout;
        Map<String, BooleanSupplier> checks = new LinkedHashMap<>(b.readinessChecks);
        OpenAiProxyHandler proxy = b.proxy;
        this.proxy = proxy;
        PrometheusMeterRegistry prometheus = b.prometheus;
        List<Consumer<RoutesConfig>> extra = List.copyOf(b.routes);
        this.app = Javalin.create(config -> {
            config.concurrency.useVirtualThreads = true;
            config.startup.showJavalinBanner = false;
            config.startup.showOldJavalinVersionWarning = false;
            // Streams must reach the caller chunk by chunk; compression would buffer them.
            config.http.compressionStrategy = CompressionStrategy.NONE;
            config.http.maxRequestSize = b.maxRequestBytes;
            config.jetty.host = host;
            config.jetty.port = port;
            long stopTimeoutMs = b.shutdownTimeout.toMillis();
            config.jetty.modifyServer(server -> {
                if (proxy != null) {
                    // The proxy routes bypass Javalin: a core Jetty handler in front of it (ADR 0051).
                    server.insertHandler(new ProxyRoutes(proxy));
                }
                // Outermost: on stop, calls under way finish (up to the timeout) while new ones are refused with 503.
                server.insertHandler(new GracefulHandler());
                server.setStopTimeout(stopTimeoutMs);
            });
            config.routes.get("/health/live", ctx -> ctx.contentType("application/json").result("{\"status\":\"UP\"}"));
            config.routes.get("/health/ready", ctx -> {
                List<String> down = new ArrayList<>();
                checks.forEach((name, check) -> {
                    boolean ok;
                    try {
                        ok = check.getAsBoolean();
                    } catch (RuntimeException e) {
                        ok = false;
                    }
                    if (!ok) {
                        down.add(name);
                    }
                });
                ctx.status(down.isEmpty() ? 200 : 503).contentType("application/json")
                        .result(down.isEmpty() ? "{\"status\":\"UP\"}"
                                : "{\"status\":\"DOWN\",\"down\":[" + String.join(",", down.stream().map(d -> "\"" + d + "\"").toList()) + "]}");
            });
            if (prometheus != null) {
                config.routes.get("/metrics", ctx -> ctx.contentType("text/plain; version=0.0.4; charset=utf-8").result(prometheus.scrape()));
            }
            extra.forEach(r -> r.accept(config.routes));
        });
    }

    public static Builder builder() {
        return new Builder();
    }

    public EdgeServer start() {
        app.start();
        return this;
    }

    /** The bound port (useful with port 0). */
    public int port() {
        return app.port();
    }

    public String baseUrl() {
        return "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port();
    }

    /**
     * Stops taking calls (new ones get 503, new connections are refused) and waits for the ones under way, up to
     * the shutdown timeout, and for their settles (a few seconds more at most).
     */
    @Override
    public void close() {
        // Streams read on after their caller left (for their usage) count as calls under way: cut them shortly
        // before the grace period ends, so they are billed (ESTIMATED) and done within it, never past it.
        Thread drainCutter = proxy == null ? null : Thread.ofVirtual().name("edge-drain-cutter").start(() -> {
            try {
                Thread.sleep(shutdownTimeout.minus(drainCutMargin(shutdownTimeout)));
                proxy.cutDrains();
            } catch (InterruptedException e) {
                // stopped before the grace ran out: nothing left to cut
            }
        });
        app.stop();
        if (drainCutter != null) {
            drainCutter.interrupt();
            proxy.cutDrains();
        }
        if (proxy != null && !proxy.awaitIdle(Duration.ofSeconds(5))) {
            LOG.warn("proxy calls still settling at shutdown; their"
                    + " reservations expire and the quota reconciler corrects the month's usage from the ledger");
        }
    }

    /** How long before the end of the grace period draining streams are cut: a quarter of it, at most 2 s. */
    static Duration drainCutMargin(Duration grace) {
        Duration quarter = grace.dividedBy(4);
        return quarter.compareTo(Duration.ofSeconds(2)) > 0 ? Duration.ofSeconds(2) : quarter;
    }

    public static final class Builder {
        private String host = "127.0.0.1";
        private int port;
        private long maxRequestBytes = 4L << 20;
        private Duration shutdownTimeout = Duration.ofSeconds(30);
        private OpenAiProxyHandler proxy;
        private PrometheusMeterRegistry prometheus;
        private final Map<String, BooleanSupplier> readinessChecks = new LinkedHashMap<>();
        private final List<Consumer<RoutesConfig>> routes = new ArrayList<>();

        public Builder host(String host) {
            this.host = Objects.requireNonNull(host);
            return this;
        }

        public Builder port(int port) {
            this.port = port;
            return this;
        }

        public Builder maxRequestBytes(long maxRequestBytes) {
            this.maxRequestBytes = maxRequestBytes;
            return this;
        }

        /** How long {@link #close()} waits for the calls under way (streams included) before it cuts them. */
        public Builder shutdownTimeout(Duration shutdownTimeout) {
            this.shutdownTimeout = Objects.requireNonNull(shutdownTimeout);
            return this;
        }

        public Builder proxy(OpenAiProxyHandler proxy) {
            this.proxy = proxy;
            return this;
        }

        public Builder prometheus(PrometheusMeterRegistry prometheus) {
            this.prometheus = prometheus;
            return this;
        }

        /** A named check for {@code /health/ready}; the edge is ready only when all pass. */
        public Builder readinessCheck(String name, BooleanSupplier check) {
            readinessChecks.put(name, check);
            return this;
        }

        /** More routes, e.g. {@code routes -> routes.get("/v1/custom", handler)}. */
        public Builder routes(Consumer<RoutesConfig> registrar) {
            routes.add(registrar);
            return this;
        }

        public Builder routes(List<Consumer<RoutesConfig>> registrars) {
            routes.addAll(registrars);
            return this;
        }

        public EdgeServer build() {
            return new EdgeServer(this);
        }
    }
}
