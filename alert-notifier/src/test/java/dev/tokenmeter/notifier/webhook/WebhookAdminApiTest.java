package dev.tokenmeter.notifier.webhook;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class WebhookAdminApiTest {

    @Test
    void aWrongOrMissingTokenIsAnsweredWithOpenAiStyle401() throws Exception {
        try (WebhookAdminApi api = new WebhookAdminApi("127.0.0.1", 0, "admin-token-0123456789", null, null).start();
             java.net.http.HttpClient client = java.net.http.HttpClient.newHttpClient()) {
            for (String auth : new String[]{"Bearer wrong-token-0123456789", "Basic x"}) {
                var response = client.send(java.net.http.HttpRequest.newBuilder(
                                java.net.URI.create("http://127.0.0.1:" + api.port() + "/admin/webhooks")).header("Authorization", auth).build(),
                        java.net.http.HttpResponse.BodyHandlers.ofString());
                assertThat(response.statusCode()).isEqualTo(401);
                assertThat(response.body()).contains("\"type\":\"authentication_error\"").contains("\"code\":\"invalid_api_key\"");
            }
            var bad = client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + api.port() + "/admin/webhooks"))
                            .header("Authorization", "Bearer admin-token-0123456789")
                            .POST(java.net.http.HttpRequest.BodyPublishers.ofString("{\"tenant_id\":\"acme\",\"url\":\"ftp://x\"}")).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertThat(bad.statusCode()).as("a bad body is refused before the store is touched").isEqualTo(400);
            assertThat(bad.body()).contains("\"param\":\"url\"").contains("invalid_request_error");
        }
    }

    @Test
    void urlsMustBeHttpOrHttpsWithAHostAndBounded() {
        assertThat(WebhookAdminApi.checkUrl("https://hooks.example.com/x?y=1")).isEqualTo("https://hooks.example.com/x?y=1");
        assertThatThrownBy(() -> WebhookAdminApi.checkUrl("ftp://example.com/")).hasMessageContaining("http or https");
        assertThatThrownBy(() -> WebhookAdminApi.checkUrl("https:///nohost")).hasMessageContaining("host");
        assertThatThrownBy(() -> WebhookAdminApi.checkUrl("not a url")).hasMessageContaining("url");
        assertThatThrownBy(() -> WebhookAdminApi.checkUrl("https://example.com/" + "a".repeat(2048))).hasMessageContaining("2048");
    }

    @Test
    void secretsAreSixteenToTwoHundredFiftySixPrintableCharacters() {
        assertThat(WebhookAdminApi.checkSecret("0123456789abcdef")).hasSize(16);
        assertThatThrownBy(() -> WebhookAdminApi.checkSecret("short")).hasMessageContaining("16 to 256");
        assertThatThrownBy(() -> WebhookAdminApi.checkSecret("0123456789abcdef ")).hasMessageContaining("printable");
        assertThatThrownBy(() -> WebhookAdminApi.checkSecret("x".repeat(257))).hasMessageContaining("16 to 256");
    }
}
