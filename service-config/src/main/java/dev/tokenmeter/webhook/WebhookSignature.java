package dev.tokenmeter.webhook;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;

/**
 * The signature of a delivery, in the header {@value #HEADER}: {@code t=<unix seconds>,v1=<hex HMAC-SHA256>}, the
 * MAC keyed with the webhook's secret over {@code <t>.<raw body>}. A receiver recomputes it over the bytes it got,
 * compares in constant time and refuses a timestamp too far from its clock (replays). Each attempt signs anew with
 * its own timestamp; the body is the same in every attempt.
 */
public final class WebhookSignature {

    public static final String HEADER = "Tokenmeter-Signature";

    private WebhookSignature() {
    }

    /** The header's value for a body sent at {@code timestampSeconds}. */
    public static String header(String secret, long timestampSeconds, byte[] body) {
        return "t=" + timestampSeconds + ",v1=" + HexFormat.of().formatHex(mac(secret, timestampSeconds, body));
    }

    /**
     * Whether {@code header} is a valid signature of {@code body} under {@code secret}, made within {@code tolerance}
     * of {@code nowSeconds}. What a receiver does (module README), used by the tests' receiver.
     */
    public static boolean verify(String secret, String header, byte[] body, long nowSeconds, Duration tolerance) {
        if (header == null) {
            return false;
        }
        Long t = null;
        byte[] presented = null;
        for (String part : header.split(",")) {
            String p = part.strip();
            try {
                if (p.startsWith("t=")) {
                    t = Long.parseLong(p.substring(2));
                } else if (p.startsWith("v1=")) {
                    presented = HexFormat.of().parseHex(p.substring(3));
                }
            } catch (IllegalArgumentException e) {
                return false;
            }
        }
        if (t == null || presented == null || Math.abs(nowSeconds - t) > tolerance.toSeconds()) {
            return false;
        }
        return MessageDigest.isEqual(presented, mac(secret, t, body));
    }

    private static byte[] mac(String secret, long timestampSeconds, byte[] body) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            mac.update((timestampSeconds + ".").getBytes(StandardCharsets.US_ASCII));
            return mac.doFinal(body);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }
}
