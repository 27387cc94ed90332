package dev.tokenmeter.edge.async;

import dev.tokenmeter.webhook.WebhookSignature;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.io.IOException;
import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.time.Clock;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Locale;

/**
 * An async job's optional callback (ADR 0083): when it ended, its JSON (as {@code GET /v1/async/jobs/{id}} answers)
 * is POSTed to the URL the caller gave in {@value #HEADER}, signed like the alert webhooks (ADR 0073):
 * {@code Tokenmeter-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>} and
 * {@code Tokenmeter-Delivery: <job id>}. The secret is the API key's own, {@code whsec_<hex HMAC-SHA256(
 * ASYNC_CALLBACK_SECRET, api key id)>}, which its holder reads at {@code GET /v1/async/callback-secret}. At most
 * {@value #ATTEMPTS} attempts (5 s to connect, 10 s each, 1 s then 2 s apart), no redirects; best effort — the job's
 * result stays readable with GET whatever the callback did.
 */
public final class JobCallbacks {

    public static final String HEADER = "x-tokenmeter-callback-url";
    /** The longest callback URL accepted. */
    public static final int MAX_URL_CHARS = 2048;
    static final int ATTEMPTS = 3;

    private static final Logger LOG = LoggerFactory.getLogger(JobCallbacks.class);

    private final String masterSecret;
    private final boolean allowPrivate;
    private final Clock clock;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5))
            .followRedirects(HttpClient.Redirect.NEVER).build();

    public JobCallbacks(AsyncJobsConfig config, Clock clock) {
        this.masterSecret = config.callbackSecret();
        this.allowPrivate = config.callbackAllowPrivate();
        this.clock = clock;
    }

    /** The callback URL as given, if within its bounds (http/https, a host, no user info, ≤ 2048 characters); else throws. */
    public static String check(String raw) {
        if (raw.length() > MAX_URL_CHARS) {
            throw new IllegalArgumentException(HEADER + " must be at most " + MAX_URL_CHARS + " characters.");
        }
        URI uri;
        try {
            uri = new URI(raw.strip());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalArgumentException(HEADER + " is not a URL.");
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        if (!(scheme.equals("http") || scheme.equals("https")) || uri.getHost() == null || uri.getRawUserInfo() != null) {
            throw new IllegalArgumentException(HEADER + " must be an http or https URL with a host and no user info.");
        }
        return uri.toString();
    }

    /** The secret the key {@code apiKeyId} signs its callbacks with. */
    public String secretFor(String apiKeyId) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(masterSecret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            return "whsec_" + HexFormat.of().formatHex(mac.doFinal(apiKeyId.getBytes(StandardCharsets.UTF_8)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }

    /**
     * Sends {@code body} (the ended job's JSON) to the job's callback URL.
     *
     * @return {@code delivered}, {@code refused_private_address}, or {@code failed_<status or error>} after the last attempt
     */
    public String deliver(AsyncJob job, byte[] body) {
        URI url = URI.create(job.callbackUrl());
        if (!allowPrivate && isPrivate(url.getHost())) {
            LOG.warn("callback of async job {} not sent: its host is a private address", job.jobId());
            return "refused_private_address";
        }
        String outcome = "failed";
        for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
            if (attempt > 1) {
                try {
                    Thread.sleep(Duration.ofSeconds(1L << (attempt - 2)));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return outcome;
                }
            }
            long t = clock.instant().getEpochSecond();
            HttpRequest request = HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(10))
                    .header("Content-Type", "application/json")
                    .header(WebhookSignature.HEADER, WebhookSignature.header(secretFor(job.apiKeyId()), t, body))
                    .header("Tokenmeter-Delivery", job.jobId())
                    .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build();
            try {
                int status = http.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
                if (status / 100 == 2) {
                    return "delivered";
                }
                outcome = "failed_" + status;
            } catch (IOException e) {
                outcome = "failed_unreachable";
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return outcome;
            }
        }
        LOG.warn("callback of async job {} not delivered after {} attempts: {}", job.jobId(), ATTEMPTS, outcome);
        return outcome;
    }

    private static boolean isPrivate(String host) {
        try {
            for (InetAddress a : InetAddress.getAllByName(host)) {
                if (a.isLoopbackAddress() || a.isSiteLocalAddress() || a.isLinkLocalAddress() || a.isAnyLocalAddress()
                        || a.isMulticastAddress()) {
                    return true;
                }
            }
            return false;
        } catch (UnknownHostException e) {
            return false; // the send fails on its own
        }
    }
}
