package dev.tokenmeter.edge;

import dev.tokenmeter.edge.http.HttpErrors;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.proxy.OpenAiProxyHandler;
import dev.tokenmeter.edge.proxy.ProxyRoutes;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
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
 * The edge's HTTP servers, Jetty 12, every request on a virtual thread.
 *
 * <p>The public listener ({@code EDGE_HOST:EDGE_PORT}) serves what callers with a {@code tm_} key use: the proxy's
 * routes, {@code POST /v1/chat/completions}, {@code /v1/completions}, {@code /v1/embeddings} and
 * {@code /v1/responses}, on a core Jetty handler ({@link ProxyRoutes}), and behind it on Javalin 7 the routes other
 * components add through {@link Builder#routes} (metering API, the usage query), {@code GET /health/live} and
 * {@code GET /health/ready} (200 only when every readiness check passes, else 503 naming the failing ones).
 * {@code /admin/...} and {@code /metrics} answer 404 there, in OpenAI's error shape, and so does every other
 * {@code /v1/...} path ({@code unsupported_endpoint}, ADR 0085).
 *
 * <p>The admin listener ({@code ADMIN_HOST:ADMIN_PORT}, loopback by default) serves the operators' routes
 * ({@link Builder#adminRoutes}: admin API, admin usage query), {@code GET /metrics} (Prometheus text) and the same
 * health routes; it is never published with the public port (ADR 0052).
 */
public final class EdgeServer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EdgeServer.class);

    private final Javalin app;
    private final Javalin admin;
    private final OpenAiProxyHandler proxy;
    private final String host;
    private final int port;
    private final String adminHost;
    private final Duration shutdownTimeout;

    private EdgeServer(Builder b) {
        this.host = b.host;
        this.port = b.port;
        this.adminHost = b.adminHost;
        this.shutdownTimeout = b.shutdownTimeout;
        Map<String, BooleanSupplier> checks = new LinkedHashMap<>(b.readinessChecks);
        OpenAiProxyHandler proxy = b.proxy;
        this.proxy = proxy;
        PrometheusMeterRegistry prometheus = b.prometheus;
        List<Consumer<RoutesConfig>> extra = List.copyOf(b.routes);
        List<Consumer<RoutesConfig>> adminExtra = List.copyOf(b.adminRoutes);
        this.app = Javalin.create(config -> {
            common(config, host, port, b.maxRequestBytes);
            long stopTimeoutMs = b.shutdownTimeout.toMillis();
            config.jetty.modifyServer(server -> {
                if (proxy != null) {
                    // The proxy routes bypass Javalin: a core Jetty handler in front of it (ADR 0051).
                    server.insertHandler(new ProxyRoutes(proxy, b.asyncJobs));
                }
                // Outermost: on stop, calls under way finish (up to the timeout) while new ones are refused with 503.
                server.insertHandler(new GracefulHandler());
                server.setStopTimeout(stopTimeoutMs);
            });
            healthRoutes(config.routes, checks);
            // Operators' routes live on the admin listener only; here they do not exist.
            for (String path : List.of("/metrics", "/admin", "/admin/*")) {
                config.routes.get(path, EdgeServer::notFound);
                config.routes.post(path, EdgeServer::notFound);
                config.routes.put(path, EdgeServer::notFound);
                config.routes.patch(path, EdgeServer::notFound);
                config.routes.delete(path, EdgeServer::notFound);
            }
            extra.forEach(r -> r.accept(config.routes));
            // Every other /v1/... path and method: refused in OpenAI's shape, never passed through unbilled (ADR 0085).
            // Added after every other route, so those match first.
            config.routes.get("/v1/*", EdgeServer::unsupported);
            config.routes.post("/v1/*", EdgeServer::unsupported);
            config.routes.put("/v1/*", EdgeServer::unsupported);
            config.routes.patch("/v1/*", EdgeServer::unsupported);
            config.routes.delete("/v1/*", EdgeServer::unsupported);
        });
        this.admin = b.adminPort < 0 ? null : Javalin.create(config -> {
            common(config, b.adminHost, b.adminPort, b.maxRequestBytes);
            healthRoutes(config.routes, checks);
            if (prometheus != null) {
                config.routes.get("/metrics", ctx -> ctx.contentType("text/plain; version=0.0.4; charset=utf-8").result(prometheus.scrape()));
            }
            adminExtra.forEach(r -> r.accept(config.routes));
        });
    }

    private static void common(io.javalin.config.JavalinConfig config, String host, int port, long maxRequestBytes) {
        config.concurrency.useVirtualThreads = true;
        config.startup.showJavalinBanner = false;
        config.startup.showOldJavalinVersionWarning = false;
        // Streams must reach the caller chunk by chunk; compression would buffer them.
        config.http.compressionStrategy = CompressionStrategy.NONE;
        config.http.maxRequestSize = maxRequestBytes;
        config.jetty.host = host;
        config.jetty.port = port;
    }

    private static void healthRoutes(RoutesConfig routes, Map<String, BooleanSupplier> checks) {
        routes.get("/health/live", ctx -> ctx.contentType("application/json").result("{\"status\":\"UP\"}"));
        routes.get("/health/ready", ctx -> {
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
    }

    /** OpenAI's answer to a path it does not serve. */
    private static void notFound(Context ctx) {
        HttpErrors.respond(ctx, new OpenAiError(404, "Invalid URL (" + ctx.method() + " " + ctx.path() + ")",
                "invalid_request_error", null, null, false, null));
    }

    /** A {@code /v1/...} call the edge cannot price: no key check, no body read, no event (ADR 0085). */
    private static void unsupported(Context ctx) {
        HttpErrors.respond(ctx, OpenAiError.unsupportedEndpoint(String.valueOf(ctx.method()), ctx.path()));
    }

    public static Builder builder() {
        return new Builder();
    }

    public EdgeServer start() {
        app.start();
        if (admin != null) {
            try {
                admin.start();
            } catch (RuntimeException e) {
                app.stop();
                throw e;
            }
        }
        return this;
    }

    /** The bound port (useful with port 0). */
    public int port() {
        return app.port();
    }

    public String baseUrl() {
        return url(host, port());
    }

    /** The admin listener's bound port, or -1 when it is off. */
    public int adminPort() {
        return admin == null ? -1 : admin.port();
    }

    /** The admin listener's base URL (admin API, /metrics). */
    public String adminBaseUrl() {
        if (admin == null) {
            throw new IllegalStateException("the admin listener is off");
        }
        return url(adminHost, admin.port());
    }

    private static String url(String host, int port) {
        return "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
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
        if (admin != null) {
            admin.stop();
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
        private String adminHost = "127.0.0.1";
        private int adminPort = -1;
        private final List<Consumer<RoutesConfig>> adminRoutes = new ArrayList<>();
        private long maxRequestBytes = 4L << 20;
        private Duration shutdownTimeout = Duration.ofSeconds(30);
        private OpenAiProxyHandler proxy;
        private dev.tokenmeter.edge.async.JobStore asyncJobs;
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

        public Builder adminHost(String adminHost) {
            this.adminHost = Objects.requireNonNull(adminHost);
            return this;
        }

        /** The admin listener's port (0 = a free port); -1 (the default) = no admin listener. */
        public Builder adminPort(int adminPort) {
            this.adminPort = adminPort;
            return this;
        }

        /** Routes served on the admin listener only, e.g. the admin API. */
        public Builder adminRoutes(Consumer<RoutesConfig> registrar) {
            adminRoutes.add(registrar);
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

        /** The async jobs' queue (ADR 0083): serves {@code POST /v1/async/chat/completions} and {@code /v1/async/embeddings}. */
        public Builder asyncJobs(dev.tokenmeter.edge.async.JobStore jobs) {
            this.asyncJobs = jobs;
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
