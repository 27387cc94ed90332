package dev.tokenmeter.notifier;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.tokenmeter.webhook.WebhookSignature;
import dev.tokenmeter.notifier.delivery.WebhookSender;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A webhook receiver as a tenant would write one (JDK HttpServer): verifies every request's signature with the
 * endpoint's secret (a bad one is answered 401 and counted), drops a repeated delivery id (answers 200, counts it
 * once), and per path misbehaves on purpose: fails the first attempts of each delivery, is slower than the
 * notifier's timeout, always fails, holds one alert's request until released, or is down altogether (stopped and
 * started again on the same port).
 */
final class WebhookReceiver implements AutoCloseable {

    enum Behaviour { OK, FAIL_FIRST_TWO, SLOW, ALWAYS_500 }

    /** One request as received. */
    record Received(String path, String alertId, String deliveryId, boolean signatureValid, int answered, byte[] body) {
    }

    private final int port;
    private final Map<String, Behaviour> behaviours = new ConcurrentHashMap<>();
    private final Map<String, String> secrets = new ConcurrentHashMap<>();
    private final List<Received> received = new CopyOnWriteArrayList<>();
    /** Per path, the delivery ids accepted (answered 2xx the first time). */
    private final Map<String, Set<String>> accepted = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> attemptsPerDelivery = new ConcurrentHashMap<>();
    private volatile String holdAlertId;
    private final CountDownLatch held = new CountDownLatch(1);
    private final CountDownLatch release = new CountDownLatch(1);
    private volatile HttpServer server;
    /** Path and delivery id of the request held. */
    private final java.util.concurrent.atomic.AtomicReference<String> heldDelivery = new java.util.concurrent.atomic.AtomicReference<>();

    WebhookReceiver(int port) {
        this.port = port;
    }

    void endpoint(String path, Behaviour behaviour) {
        behaviours.put(path, behaviour);
    }

    void secret(String path, String secret) {
        secrets.put(path, secret);
    }

    /** The first request for this alert (any path) is held until {@link #release()}, then answered 200. */
    void hold(String alertId) {
        holdAlertId = alertId;
    }

    boolean awaitHeld(Duration timeout) throws InterruptedException {
        return held.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    String heldDelivery() {
        return heldDelivery.get();
    }

    void release() {
        release.countDown();
    }

    synchronized WebhookReceiver up() throws IOException {
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 50);
        s.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        s.createContext("/", this::handle);
        s.start();
        server = s;
        return this;
    }

    synchronized void down() {
        if (server != null) {
            server.stop(0);
            server = null;
        }
    }

    String url(String path) {
        return "http://127.0.0.1:" + port + path;
    }

    List<Received> received() {
        return List.copyOf(received);
    }

    Set<String> accepted(String path) {
        return Set.copyOf(accepted.getOrDefault(path, Set.of()));
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getPath();
            byte[] body;
            try (InputStream in = ex.getRequestBody()) {
                body = in.readAllBytes();
            }
            String alertId = ex.getRequestHeaders().getFirst(WebhookSender.ALERT_HEADER);
            String deliveryId = ex.getRequestHeaders().getFirst(WebhookSender.DELIVERY_HEADER);
            String secret = secrets.get(path);
            boolean valid = secret != null && WebhookSignature.verify(secret,
                    ex.getRequestHeaders().getFirst(WebhookSignature.HEADER), body, System.currentTimeMillis() / 1000,
                    Duration.ofMinutes(5));
            int status = answer(path, alertId, deliveryId, valid);
            received.add(new Received(path, alertId, deliveryId, valid, status, body));
            ex.sendResponseHeaders(status, -1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private int answer(String path, String alertId, String deliveryId, boolean valid) throws InterruptedException {
        if (!valid) {
            return 401;
        }
        Behaviour b = behaviours.getOrDefault(path, Behaviour.ALWAYS_500);
        int attempt = attemptsPerDelivery.computeIfAbsent(path + deliveryId, k -> new AtomicInteger()).incrementAndGet();
        switch (b) {
            case ALWAYS_500 -> {
                return 500;
            }
            case SLOW -> {
                // Far past the notifier's request timeout; the notifier gives up on it, not this side.
                Thread.sleep(3_000);
                return 200;
            }
            case FAIL_FIRST_TWO -> {
                if (attempt <= 2) {
                    return 503;
                }
            }
            case OK -> {
            }
        }
        if (alertId != null && alertId.equals(holdAlertId) && heldDelivery.compareAndSet(null, path + " " + deliveryId)) {
            held.countDown();
            release.await(60, TimeUnit.SECONDS);
        }
        // The receiver's own dedup: a delivery id seen before is acknowledged, not processed again.
        accepted.computeIfAbsent(path, p -> ConcurrentHashMap.newKeySet()).add(deliveryId);
        return 200;
    }

    @Override
    public void close() {
        release.countDown();
        down();
    }
}
