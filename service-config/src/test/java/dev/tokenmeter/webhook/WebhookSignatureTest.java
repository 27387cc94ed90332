package dev.tokenmeter.webhook;

import org.junit.jupiter.api.Test;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HexFormat;

import static org.assertj.core.api.Assertions.assertThat;

class WebhookSignatureTest {

    private static final String SECRET = "whsec_test_secret_0123456789";
    private static final byte[] BODY = "{\"alert_id\":\"u1|2026-12|80\"}".getBytes(StandardCharsets.UTF_8);

    @Test
    void theHeaderIsTheHmacOfTimestampDotBodyAsTheReadmeSays() throws Exception {
        // Computed independently, the way the README's receiver snippet does it.
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(SECRET.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        String expected = HexFormat.of().formatHex(mac.doFinal(("1765000000." + new String(BODY, StandardCharsets.UTF_8))
                .getBytes(StandardCharsets.UTF_8)));
        assertThat(WebhookSignature.header(SECRET, 1765000000L, BODY)).isEqualTo("t=1765000000,v1=" + expected);
    }

    @Test
    void verifyAcceptsItsOwnSignatureWithinTheTolerance() {
        String header = WebhookSignature.header(SECRET, 1765000000L, BODY);
        assertThat(WebhookSignature.verify(SECRET, header, BODY, 1765000000L + 299, Duration.ofMinutes(5))).isTrue();
        assertThat(WebhookSignature.verify(SECRET, header, BODY, 1765000000L - 299, Duration.ofMinutes(5))).isTrue();
    }

    @Test
    void verifyRefusesAnotherSecretBodyOrTimestampAnOldOneAndGarbage() {
        String header = WebhookSignature.header(SECRET, 1765000000L, BODY);
        assertThat(WebhookSignature.verify(SECRET + "x", header, BODY, 1765000000L, Duration.ofMinutes(5))).isFalse();
        byte[] other = "{\"alert_id\":\"u1|2026-12|100\"}".getBytes(StandardCharsets.UTF_8);
        assertThat(WebhookSignature.verify(SECRET, header, other, 1765000000L, Duration.ofMinutes(5))).isFalse();
        String movedTimestamp = header.replace("t=1765000000", "t=1765000001");
        assertThat(WebhookSignature.verify(SECRET, movedTimestamp, BODY, 1765000000L, Duration.ofMinutes(5))).isFalse();
        assertThat(WebhookSignature.verify(SECRET, header, BODY, 1765000000L + 301, Duration.ofMinutes(5)))
                .as("a replay older than the tolerance").isFalse();
        assertThat(WebhookSignature.verify(SECRET, null, BODY, 1765000000L, Duration.ofMinutes(5))).isFalse();
        assertThat(WebhookSignature.verify(SECRET, "t=abc,v1=zz", BODY, 1765000000L, Duration.ofMinutes(5))).isFalse();
        assertThat(WebhookSignature.verify(SECRET, "v1=00", BODY, 1765000000L, Duration.ofMinutes(5))).isFalse();
    }
}
