package dev.tokenmeter.edge.proxy;

import dev.tokenmeter.edge.async.JobStore;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;

import java.util.Map;
import java.util.Set;

/**
 * Serves the proxy's {@code POST} routes ({@link OpenAiProxyHandler#ENDPOINTS}) straight from Jetty's core handler
 * API, in front of the web framework that serves everything else (health, metrics, metering, admin, usage), which
 * it wraps. The proxy is the hot path: it skips the servlet, session and routing layers every other request goes
 * through (ADR 0051).
 */
public final class ProxyRoutes extends Handler.Wrapper {

    /** The async routes (ADR 0083) and the sync route each queues a call for. */
    public static final Map<String, String> ASYNC_ENDPOINTS =
            Map.of("/v1/async/chat/completions", "/v1/chat/completions", "/v1/async/embeddings", "/v1/embeddings");

    private final OpenAiProxyHandler proxy;
    private final JobStore jobs;
    private final Set<String> endpoints = Set.copyOf(OpenAiProxyHandler.ENDPOINTS);

    public ProxyRoutes(OpenAiProxyHandler proxy) {
        this(proxy, null);
    }

    /** @param jobs the async jobs' queue; null = no async routes */
    public ProxyRoutes(OpenAiProxyHandler proxy, JobStore jobs) {
        this.proxy = proxy;
        this.jobs = jobs;
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) throws Exception {
        String path = Request.getPathInContext(request);
        if (proxy.servesBatch(path)) {
            JettyProxyExchange exchange = new JettyProxyExchange(request, response, callback);
            try {
                proxy.batch(exchange, request.getMethod(), path, request.getHttpURI().getQuery());
                exchange.finish();
            } catch (Throwable t) {
                exchange.fail(t);
            }
            return true;
        }
        String queuedFor = jobs == null ? null : ASYNC_ENDPOINTS.get(path);
        if (!"POST".equals(request.getMethod()) || !(endpoints.contains(path) || queuedFor != null)) {
            return super.handle(request, response, callback);
        }
        JettyProxyExchange exchange = new JettyProxyExchange(request, response, callback);
        try {
            if (queuedFor != null) {
                proxy.enqueue(exchange, queuedFor, jobs);
            } else {
                proxy.handle(exchange, path);
            }
            exchange.finish();
        } catch (Throwable t) {
            exchange.fail(t);
        }
        return true;
    }

    @Override
    public InvocationType getInvocationType() {
        // The proxy blocks (Redis, the upstream, the event spool): Jetty must call it on a thread that may block.
        return InvocationType.BLOCKING;
    }
}
