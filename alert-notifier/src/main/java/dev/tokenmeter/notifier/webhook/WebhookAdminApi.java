package dev.tokenmeter.notifier.webhook;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.tokenmeter.notifier.delivery.DeliveryLog;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.Executors;

/**
 * The notifier's admin API (ADR 0073), bearer {@code ADMIN_TOKEN}, errors in OpenAI's error shape:
 * <ul>
 *   <li>{@code POST /admin/webhooks} {@code {tenant_id, url, format?, enabled?, secret?}} → 201 with the secret
 *       (generated when absent: {@code whsec_} + 32 random bytes), the only answer that shows it;</li>
 *   <li>{@code GET /admin/webhooks[?tenant_id=]} → {@code {data: [...]}} (at most 1,000), {@code GET /admin/webhooks/{id}};</li>
 *   <li>{@code PATCH /admin/webhooks/{id}} {@code {url?, format?, enabled?, rotate_secret?}} (a rotation answers the
 *       new secret);</li>
 *   <li>{@code GET /admin/webhooks/{id}/deliveries[?limit=]} → the newest deliveries (at most 500).</li>
 * </ul>
 * Bounds: body ≤ 16 KiB; tenant_id 1–256 characters; url http(s) with a host, ≤ 2,048 characters; secret 16–256
 * printable ASCII characters.
 */
public final class WebhookAdminApi implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(WebhookAdminApi.class);
    static final int MAX_BODY_BYTES = 16 * 1024;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final SecureRandom RANDOM = new SecureRandom();

    private final HttpServer server;
    private final WebhookStore store;
    private final DeliveryLog deliveryLog;
    private final byte[] tokenDigest;

    public WebhookAdminApi(String host, int port, String token, WebhookStore store, DeliveryLog deliveryLog) throws IOException {
        this.store = store;
        this.deliveryLog = deliveryLog;
        this.tokenDigest = sha256(token);
        this.server = HttpServer.create(new InetSocketAddress(host, port), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/admin/webhooks", this::handle);
    }

    public WebhookAdminApi start() {
        server.start();
        return this;
    }

    public int port() {
        return server.getAddress().getPort();
    }

    @Override
    public void close() {
        server.stop(1);
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            try {
                route(ex);
            } catch (BadRequest e) {
                error(ex, 400, e.getMessage(), e.param, "invalid_value", "invalid_request_error");
            } catch (RuntimeException e) {
                log.warn("admin request failed: {}", e.getClass().getSimpleName());
                error(ex, 500, "internal error", null, "internal_error", "server_error");
            }
        }
    }

    private void route(HttpExchange ex) throws IOException {
        {
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            if (auth == null || !auth.startsWith("Bearer ") || !MessageDigest.isEqual(sha256(auth.substring(7).strip()), tokenDigest)) {
                error(ex, 401, "invalid admin token", null, "invalid_api_key", "authentication_error");
                return;
            }
            String path = ex.getRequestURI().getPath().replaceAll("/+$", "");
            String[] parts = path.substring("/admin/webhooks".length()).split("/");
            // parts[0] is "" ; parts[1] the id, parts[2] "deliveries"
            String method = ex.getRequestMethod();
            Map<String, String> query = query(ex.getRequestURI());
            if (parts.length <= 1) {
                switch (method) {
                    case "POST" -> create(ex);
                    case "GET" -> list(ex, query);
                    default -> error(ex, 405, "method not allowed", null, "method_not_allowed", "invalid_request_error");
                }
                return;
            }
            UUID id;
            try {
                id = UUID.fromString(parts[1]);
            } catch (IllegalArgumentException e) {
                error(ex, 404, "no such webhook", null, "not_found", "invalid_request_error");
                return;
            }
            if (parts.length == 2 && method.equals("GET")) {
                reply(ex, store.get(id), false);
            } else if (parts.length == 2 && method.equals("PATCH")) {
                update(ex, id);
            } else if (parts.length == 3 && parts[2].equals("deliveries") && method.equals("GET")) {
                int limit = intParam(query.get("limit"), 50, 1, 500);
                if (store.get(id).isEmpty()) {
                    error(ex, 404, "no such webhook", null, "not_found", "invalid_request_error");
                } else {
                    send(ex, 200, Map.of("object", "list", "data", deliveryLog.recent(id, limit)));
                }
            } else {
                error(ex, 404, "not found", null, "not_found", "invalid_request_error");
            }
        }
    }

    private void create(HttpExchange ex) throws IOException {
        JsonNode b = body(ex);
        String tenantId = text(b, "tenant_id", true);
        if (tenantId.isEmpty() || tenantId.length() > 256) {
            throw new BadRequest("tenant_id must be 1 to 256 characters", "tenant_id");
        }
        String url = checkUrl(text(b, "url", true));
        Webhook.Format format = format(b);
        String secret = b.has("secret") ? checkSecret(text(b, "secret", true)) : newSecret();
        boolean enabled = !b.has("enabled") || bool(b, "enabled");
        Webhook w = store.create(tenantId, url, secret, format == null ? Webhook.Format.JSON : format, enabled);
        log.info("webhook {} created for tenant {} ({})", w.id(), tenantId, w.origin());
        send(ex, 201, view(w, true));
    }

    private void list(HttpExchange ex, Map<String, String> query) throws IOException {
        List<Map<String, Object>> data = store.list(query.get("tenant_id"), 1000).stream().map(w -> view(w, false)).toList();
        send(ex, 200, Map.of("object", "list", "data", data));
    }

    private void update(HttpExchange ex, UUID id) throws IOException {
        JsonNode b = body(ex);
        String url = b.has("url") ? checkUrl(text(b, "url", true)) : null;
        boolean rotate = b.has("rotate_secret") && bool(b, "rotate_secret");
        String secret = rotate ? newSecret() : null;
        Boolean enabled = b.has("enabled") ? bool(b, "enabled") : null;
        Optional<Webhook> w = store.update(id, url, secret, format(b), enabled);
        w.ifPresent(x -> log.info("webhook {} updated (enabled {}, secret rotated {})", x.id(), x.enabled(), rotate));
        reply(ex, w, rotate);
    }

    private void reply(HttpExchange ex, Optional<Webhook> w, boolean withSecret) throws IOException {
        if (w.isEmpty()) {
            error(ex, 404, "no such webhook", null, "not_found", "invalid_request_error");
        } else {
            send(ex, 200, view(w.get(), withSecret));
        }
    }

    private static Map<String, Object> view(Webhook w, boolean withSecret) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", w.id().toString());
        m.put("object", "webhook");
        m.put("tenant_id", w.tenantId());
        m.put("url", w.url());
        m.put("format", w.format().wireName());
        m.put("enabled", w.enabled());
        if (withSecret) {
            m.put("secret", w.secret());
        }
        return m;
    }

    static String checkUrl(String url) {
        URI u;
        try {
            u = new URI(url);
        } catch (java.net.URISyntaxException e) {
            throw new BadRequest("url is not a valid URI", "url");
        }
        if (url.length() > 2048 || u.getScheme() == null || !(u.getScheme().equals("http") || u.getScheme().equals("https"))
                || u.getHost() == null) {
            throw new BadRequest("url must be an http or https URL with a host, at most 2048 characters", "url");
        }
        return url;
    }

    static String checkSecret(String secret) {
        if (secret.length() < 16 || secret.length() > 256 || !secret.chars().allMatch(c -> c > 0x20 && c < 0x7f)) {
            throw new BadRequest("secret must be 16 to 256 printable ASCII characters", "secret");
        }
        return secret;
    }

    private static String newSecret() {
        byte[] b = new byte[32];
        RANDOM.nextBytes(b);
        return "whsec_" + Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    private static Webhook.Format format(JsonNode b) {
        if (!b.has("format")) {
            return null;
        }
        try {
            return Webhook.Format.of(text(b, "format", true));
        } catch (IllegalArgumentException e) {
            throw new BadRequest("format must be json or slack", "format");
        }
    }

    private static String text(JsonNode b, String field, boolean required) {
        JsonNode v = b.get(field);
        if (v == null || !v.isTextual()) {
            throw new BadRequest(field + " must be a string", field);
        }
        return v.asText();
    }

    private static boolean bool(JsonNode b, String field) {
        JsonNode v = b.get(field);
        if (!v.isBoolean()) {
            throw new BadRequest(field + " must be true or false", field);
        }
        return v.asBoolean();
    }

    private static JsonNode body(HttpExchange ex) throws IOException {
        byte[] raw;
        try (InputStream in = ex.getRequestBody()) {
            raw = in.readNBytes(MAX_BODY_BYTES + 1);
        }
        if (raw.length > MAX_BODY_BYTES) {
            throw new BadRequest("body larger than " + MAX_BODY_BYTES + " bytes", null);
        }
        try {
            JsonNode n = JSON.readTree(raw);
            if (n == null || !n.isObject()) {
                throw new BadRequest("body must be a JSON object", null);
            }
            return n;
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new BadRequest("body is not valid JSON", null);
        }
    }

    private static Map<String, String> query(URI uri) {
        Map<String, String> m = new LinkedHashMap<>();
        if (uri.getRawQuery() != null) {
            for (String kv : uri.getRawQuery().split("&")) {
                int eq = kv.indexOf('=');
                if (eq > 0) {
                    m.put(URLDecoder.decode(kv.substring(0, eq), StandardCharsets.UTF_8),
                            URLDecoder.decode(kv.substring(eq + 1), StandardCharsets.UTF_8));
                }
            }
        }
        return m;
    }

    private static int intParam(String v, int dflt, int min, int max) {
        if (v == null) {
            return dflt;
        }
        try {
            int n = Integer.parseInt(v);
            if (n >= min && n <= max) {
                return n;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw new BadRequest("limit must be a whole number from " + min + " to " + max, "limit");
    }

    private static void error(HttpExchange ex, int status, String message, String param, String code, String type) throws IOException {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("message", message);
        e.put("type", type);
        e.put("param", param);
        e.put("code", code);
        send(ex, status, Map.of("error", e));
    }

    private static void send(HttpExchange ex, int status, Object body) throws IOException {
        byte[] bytes = JSON.writeValueAsBytes(body);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, bytes.length);
        ex.getResponseBody().write(bytes);
    }

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static final class BadRequest extends RuntimeException {
        final String param;

        BadRequest(String message, String param) {
            super(message, null, false, false);
            this.param = param;
        }
    }
}
