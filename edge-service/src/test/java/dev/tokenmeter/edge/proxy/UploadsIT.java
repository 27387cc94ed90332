package dev.tokenmeter.edge.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.edge.ApiCalls;
import dev.tokenmeter.edge.EdgeTestBed;
import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageEvent;
import dev.tokenmeter.events.UsageSource;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import dev.tokenmeter.testkit.openai.RecordedRequest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Issue 16 (ADR 0088), on the real engines and the fake upstream: multipart uploads — transcriptions and
 * translations, billed by tokens (gpt-4o(-mini)-transcribe) or by the second (whisper-1), and gpt-image-1 edits —
 * are proxied byte for byte and each event's cost is its tokens (or seconds) × the V34/V27_1 prices exactly; a
 * garbled, non-multipart or oversized upload is refused with nothing upstream and no event.
 */
@ExtendWith(EnginesExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class UploadsIT {

    /** V34, nano-USD per token (or per second for whisper-1). */
    private static final long TRANSCRIBE_TEXT = 2500, TRANSCRIBE_AUDIO = 6000, TRANSCRIBE_OUTPUT = 10000;
    private static final long MINI_TEXT = 1250, MINI_AUDIO = 3000, MINI_OUTPUT = 5000;
    private static final long WHISPER_PER_SECOND = 100_000;
    /** V27_1 gpt-image-1. */
    private static final long IMAGE_TEXT = 5000, IMAGE_INPUT = 10000, IMAGE_OUTPUT = 40000;

    private FakeOpenAi openAi;
    private EdgeTestBed bed;

    @BeforeAll
    void start(Engines engines) {
        openAi = FakeOpenAi.start();
        bed = new EdgeTestBed(engines, openAi, Map.of());
    }

    @AfterAll
    void stop() {
        bed.close();
        openAi.close();
    }

    /** A multipart/form-data body: text fields, then files ({name, filename, content}) of ASCII "audio". */
    private record Multipart(String boundary, byte[] body) {
        static Multipart of(Map<String, String> fields, List<String[]> files) {
            String boundary = "----tmBoundary" + UUID.randomUUID().toString().replace("-", "");
            StringBuilder sb = new StringBuilder();
            fields.forEach((k, v) -> sb.append("--").append(boundary).append("\r\nContent-Disposition: form-data; name=\"")
                    .append(k).append("\"\r\n\r\n").append(v).append("\r\n"));
            for (String[] f : files) {
                sb.append("--").append(boundary).append("\r\nContent-Disposition: form-data; name=\"").append(f[0])
                        .append("\"; filename=\"").append(f[1]).append("\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                        .append(f[2]).append("\r\n");
            }
            sb.append("--").append(boundary).append("--\r\n");
            return new Multipart(boundary, sb.toString().getBytes(StandardCharsets.UTF_8));
        }

        String contentType() {
            return "multipart/form-data; boundary=" + boundary;
        }
    }

    private static String audio(int bytes) {
        return "a".repeat(bytes);
    }

    private HttpResponse<String> upload(String path, User user, String contentType, byte[] body) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create(bed.baseUrl() + path))
                .timeout(Duration.ofSeconds(30))
                .header("Authorization", "Bearer " + user.key())
                .header("Content-Type", contentType)
                .POST(HttpRequest.BodyPublishers.ofByteArray(body))
                .build();
        return bed.client.send(request, HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> upload(String path, User user, Multipart form) throws Exception {
        return upload(path, user, form.contentType(), form.body());
    }

    private List<RecordedRequest> sentWith(String marker) {
        return openAi.requests().stream().filter(r -> r.body().contains(marker)).toList();
    }

    @Test
    void transcriptions_byTokens_areBilledAudioTextAndOutputTokensAtTheirOwnPrices_exactly() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String marker = "names: Ada " + UUID.randomUUID();
        Multipart big = Multipart.of(Map.of("model", "gpt-4o-transcribe", "prompt", marker), List.<String[]>of(
                new String[] {"file", "speech.mp3", audio(32_000)}));
        HttpResponse<String> r = upload("/v1/audio/transcriptions", user, big);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        JsonNode usage = ApiCalls.json(r).get("usage");
        assertThat(usage.get("type").asText()).isEqualTo("tokens");
        Multipart mini = Multipart.of(Map.of("model", "gpt-4o-mini-transcribe", "response_format", "json"),
                List.<String[]>of(new String[] {"file", "speech.wav", audio(6_400) + marker}));
        HttpResponse<String> r2 = upload("/v1/audio/transcriptions", user, mini);
        assertThat(r2.statusCode()).as(r2.body()).isEqualTo(200);

        List<UsageEvent> events = bed.awaitEvents(user.userId(), 2, Duration.ofSeconds(20));
        UsageEvent e = events.get(0);
        assertThat(e.getEndpoint()).isEqualTo("/v1/audio/transcriptions");
        assertThat(e.getOutcome()).isEqualTo(Outcome.SUCCEEDED);
        assertThat(e.getUsageSource()).isEqualTo(UsageSource.REPORTED);
        assertThat(e.getPriceVersion()).isEqualTo("gpt-4o-transcribe@2025-03-20");
        long audioTokens = 1000; // the fake: ceil(32,000 / 32)
        long textTokens = usage.at("/input_token_details/text_tokens").asLong();
        assertThat(textTokens).isPositive();
        assertThat(e.getPromptTokens()).isEqualTo(audioTokens + textTokens);
        assertThat(e.getCompletionTokens()).isEqualTo(251); // 1000 / 4 + 1
        assertThat(e.getAttributes()).containsEntry("audio_input_tokens", "1000").doesNotContainKey("image_input_tokens");
        assertThat(e.getCostNanoUsd()).isEqualTo(textTokens * TRANSCRIBE_TEXT + audioTokens * TRANSCRIBE_AUDIO + 251 * TRANSCRIBE_OUTPUT);

        UsageEvent m = events.get(1);
        assertThat(m.getPriceVersion()).isEqualTo("gpt-4o-mini-transcribe@2025-03-20");
        long miniAudio = Math.ceilDiv(6_400L + marker.length(), 32L);
        assertThat(m.getPromptTokens()).as("no prompt: audio tokens only").isEqualTo(miniAudio);
        assertThat(m.getCostNanoUsd()).isEqualTo(miniAudio * MINI_AUDIO + (miniAudio / 4 + 1) * MINI_OUTPUT);
        assertThat(MINI_TEXT).as("mini's text price is not used without a prompt").isPositive();

        // Forwarded byte for byte, with the caller's boundary, on the service key.
        List<RecordedRequest> sent = sentWith(marker);
        assertThat(sent).hasSize(2);
        assertThat(sent.get(0).body()).isEqualTo(new String(big.body(), StandardCharsets.UTF_8));
        assertThat(sent.get(0).headers().get("Content-Type")).contains(big.boundary());
        assertThat(sent).allSatisfy(s -> assertThat(s.headers().get("Authorization")).doesNotContain(user.key()));
        await("reservations settled with the billed cost").atMost(Duration.ofSeconds(10))
                .until(() -> bed.reservedNanoUsd(user.userId()) == 0);
        assertThat(bed.usedNanoUsd(user.userId())).isEqualTo(e.getCostNanoUsd() + m.getCostNanoUsd());
    }

    @Test
    void whisper_isBilledPerSecond_roundedToTheNearestSecond_andTranslationsByTheirVerboseDuration() throws Exception {
        User user = bed.newUser(Money.usd(5));
        // The fake reports file bytes / 1000 seconds: 12.5 s rounds up to 13, 12.4 s down to 12.
        HttpResponse<String> half = upload("/v1/audio/transcriptions", user, Multipart.of(Map.of("model", "whisper-1"),
                List.<String[]>of(new String[] {"file", "a.mp3", audio(12_500)})));
        assertThat(half.statusCode()).as(half.body()).isEqualTo(200);
        assertThat(ApiCalls.json(half).at("/usage/seconds").decimalValue()).isEqualByComparingTo("12.5");
        HttpResponse<String> less = upload("/v1/audio/transcriptions", user, Multipart.of(
                Map.of("model", "whisper-1", "response_format", "verbose_json"), List.<String[]>of(new String[] {"file", "b.mp3", audio(12_400)})));
        assertThat(less.statusCode()).as(less.body()).isEqualTo(200);
        HttpResponse<String> translated = upload("/v1/audio/translations", user, Multipart.of(
                Map.of("model", "whisper-1", "response_format", "verbose_json"), List.<String[]>of(new String[] {"file", "c.mp3", audio(7_000)})));
        assertThat(translated.statusCode()).as(translated.body()).isEqualTo(200);
        assertThat(ApiCalls.json(translated).has("usage")).as("a translation reports only its duration").isFalse();
        // A translation's json answer carries neither usage nor duration: it cannot be billed exactly, so it is refused.
        HttpResponse<String> unbillable = upload("/v1/audio/translations", user, Multipart.of(
                Map.of("model", "whisper-1"), List.<String[]>of(new String[] {"file", "d.mp3", audio(100)})));
        assertThat(unbillable.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(unbillable).at("/error/param").asText()).isEqualTo("response_format");

        List<UsageEvent> events = bed.awaitEvents(user.userId(), 4, Duration.ofSeconds(20));
        assertThat(events).extracting(UsageEvent::getOutcome)
                .containsExactly(Outcome.SUCCEEDED, Outcome.SUCCEEDED, Outcome.SUCCEEDED, Outcome.REJECTED);
        assertThat(events).extracting(UsageEvent::getPromptTokens).containsExactly(13L, 12L, 7L, 0L);
        assertThat(events).extracting(UsageEvent::getCostNanoUsd)
                .containsExactly(13 * WHISPER_PER_SECOND, 12 * WHISPER_PER_SECOND, 7 * WHISPER_PER_SECOND, 0L);
        assertThat(events.get(2).getEndpoint()).isEqualTo("/v1/audio/translations");
        assertThat(events.get(0).getPriceVersion()).isEqualTo("whisper-1@2023-03-01");
        assertThat(openAi.requests().stream().filter(r -> r.path().equals("/v1/audio/translations")
                && r.body().contains("d.mp3")).toList()).as("the refused translation never went upstream").isEmpty();
        await("reservations settled").atMost(Duration.ofSeconds(10)).until(() -> bed.reservedNanoUsd(user.userId()) == 0);
        assertThat(bed.usedNanoUsd(user.userId())).isEqualTo(32 * WHISPER_PER_SECOND);
    }

    @Test
    void imageEdits_areBilledLikeGenerations_withTheirImageInputTokens_exactly() throws Exception {
        User user = bed.newUser(Money.usd(5));
        String prompt = "add a hat " + UUID.randomUUID();
        HttpResponse<String> r = upload("/v1/images/edits", user, Multipart.of(
                Map.of("model", "gpt-image-1", "prompt", prompt, "n", "1", "quality", "low", "size", "1024x1024"),
                List.<String[]>of(new String[] {"image[]", "a.png", "PNGDATA1"}, new String[] {"image[]", "b.png", "PNGDATA2"})));
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        JsonNode usage = ApiCalls.json(r).get("usage");
        assertThat(usage.at("/input_tokens_details/image_tokens").asLong()).isEqualTo(2 * 194);

        UsageEvent e = bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(20)).getFirst();
        assertThat(e.getEndpoint()).isEqualTo("/v1/images/edits");
        assertThat(e.getPriceVersion()).isEqualTo("gpt-image-1@2025-04-23");
        long text = usage.at("/input_tokens_details/text_tokens").asLong();
        assertThat(text).isPositive();
        assertThat(e.getPromptTokens()).isEqualTo(text + 388);
        assertThat(e.getCompletionTokens()).isEqualTo(272);
        assertThat(e.getAttributes()).containsEntry("image_input_tokens", "388");
        assertThat(e.getCostNanoUsd()).isEqualTo(text * IMAGE_TEXT + 388 * IMAGE_INPUT + 272 * IMAGE_OUTPUT);
        await("reservation settled").atMost(Duration.ofSeconds(10)).until(() -> bed.reservedNanoUsd(user.userId()) == 0);
        assertThat(bed.usedNanoUsd(user.userId())).isEqualTo(e.getCostNanoUsd());
    }

    @Test
    void garbledNonMultipartOrOversizedUploads_areRefused_withNothingUpstreamAndNoEvent() throws Exception {
        User user = bed.newUser(Money.usd(1));
        String marker = "garbled-" + UUID.randomUUID();
        Multipart good = Multipart.of(Map.of("model", "whisper-1", "prompt", marker), List.<String[]>of(new String[] {"file", "a.mp3", "xx"}));
        byte[] unclosed = new String(good.body(), StandardCharsets.UTF_8).replace("--" + good.boundary() + "--", "")
                .getBytes(StandardCharsets.UTF_8);
        HttpResponse<String> noEnd = upload("/v1/audio/transcriptions", user, good.contentType(), unclosed);
        assertThat(noEnd.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(noEnd).at("/error/type").asText()).isEqualTo("invalid_request_error");
        assertThat(ApiCalls.json(noEnd).at("/error/message").asText()).contains("malformed").doesNotContain(marker);
        HttpResponse<String> wrongBoundary = upload("/v1/audio/transcriptions", user,
                "multipart/form-data; boundary=other", good.body());
        assertThat(wrongBoundary.statusCode()).isEqualTo(400);
        HttpResponse<String> json = upload("/v1/audio/transcriptions", user, "application/json",
                ("{\"model\":\"whisper-1\",\"prompt\":\"" + marker + "\"}").getBytes(StandardCharsets.UTF_8));
        assertThat(json.statusCode()).isEqualTo(400);
        assertThat(ApiCalls.json(json).at("/error/message").asText()).contains("multipart/form-data");
        Multipart tooMany = Multipart.of(Map.of("model", "gpt-image-1", "prompt", marker),
                java.util.stream.IntStream.range(0, 40).mapToObj(i -> new String[] {"image[]", i + ".png", "x"}).toList());
        assertThat(upload("/v1/images/edits", user, tooMany).statusCode()).isEqualTo(400);
        Multipart badName = Multipart.of(Map.of("model", "whisper-1", "bad name\"x", marker), List.<String[]>of(new String[] {"file", "a", "x"}));
        assertThat(upload("/v1/audio/transcriptions", user, badName).statusCode()).isEqualTo(400);

        // Over OpenAI's 25 MB: refused from the declared length before a byte of the body is read.
        String oversized = rawPost("/v1/audio/transcriptions", user, good.contentType(), 30L << 20);
        assertThat(oversized).startsWith("HTTP/1.1 413").contains("request_too_large");

        assertThat(sentWith(marker)).as("nothing went upstream").isEmpty();
        // The next good call is the user's first event: none of the refusals made one.
        HttpResponse<String> ok = upload("/v1/audio/transcriptions", user, Multipart.of(Map.of("model", "whisper-1"),
                List.<String[]>of(new String[] {"file", "ok.mp3", audio(2_000)})));
        assertThat(ok.statusCode()).as(ok.body()).isEqualTo(200);
        List<UsageEvent> events = bed.awaitEvents(user.userId(), 1, Duration.ofSeconds(20));
        assertThat(events).hasSize(1);
        assertThat(events.getFirst().getCostNanoUsd()).isEqualTo(2 * WHISPER_PER_SECOND);
    }

    @Test
    void pastSixteenUploadsInFlight_oneMoreIsShed_withNoEvent_andThePlacesComeBack() throws Exception {
        User holder = bed.newUser(Money.usd(1), 10_000);
        User caller = bed.newUser(Money.usd(1), 10_000);
        byte[] garbled = "--x\r\nnot a part".getBytes(StandardCharsets.US_ASCII);
        List<Socket> held = new java.util.ArrayList<>();
        try {
            // Each sends its headers and never its body: the edge holds the upload's place while it waits for it.
            for (int i = 0; i < UploadReader.MAX_UPLOADS_IN_FLIGHT; i++) {
                held.add(headersOnly("/v1/audio/transcriptions", holder, "multipart/form-data; boundary=x", 1000));
            }
            await("the 17th upload is shed").atMost(Duration.ofSeconds(20)).until(() ->
                    upload("/v1/audio/transcriptions", caller, "multipart/form-data; boundary=x", garbled).statusCode() == 503);
            HttpResponse<String> shed = upload("/v1/images/edits", caller, "multipart/form-data; boundary=x", garbled);
            assertThat(shed.statusCode()).isEqualTo(503);
            assertThat(ApiCalls.json(shed).at("/error/code").asText()).isEqualTo("server_overloaded");
            assertThat(shed.headers().firstValue("retry-after")).isPresent();
            // Other endpoints are not limited by it.
            assertThat(bed.post("/v1/chat/completions", caller.key(), EdgeTestBed.chat("gpt-4o-mini", "hi")).statusCode()).isEqualTo(200);
        } finally {
            for (Socket s : held) {
                s.close();
            }
        }
        await("the places came back").atMost(Duration.ofSeconds(20)).until(() ->
                upload("/v1/audio/transcriptions", caller, "multipart/form-data; boundary=x", garbled).statusCode() == 400);
        assertThat(bed.events(caller.userId())).as("shed and garbled uploads make no event: only the chat call's")
                .extracting(UsageEvent::getEndpoint).containsExactly("/v1/chat/completions");
    }

    private Socket headersOnly(String path, User user, String contentType, long contentLength) throws Exception {
        URI uri = URI.create(bed.baseUrl());
        Socket socket = new Socket(uri.getHost(), uri.getPort());
        socket.getOutputStream().write(("POST " + path + " HTTP/1.1\r\nHost: " + uri.getHost() + "\r\nAuthorization: Bearer "
                + user.key() + "\r\nContent-Type: " + contentType + "\r\nContent-Length: " + contentLength + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        socket.getOutputStream().flush();
        return socket;
    }

    /** Sends only the headers of a POST that declares {@code contentLength} bytes, and reads the answer. */
    private String rawPost(String path, User user, String contentType, long contentLength) throws Exception {
        URI uri = URI.create(bed.baseUrl());
        try (Socket socket = new Socket(uri.getHost(), uri.getPort())) {
            socket.setSoTimeout(10_000);
            OutputStream out = socket.getOutputStream();
            out.write(("POST " + path + " HTTP/1.1\r\nHost: " + uri.getHost() + "\r\nAuthorization: Bearer " + user.key()
                    + "\r\nContent-Type: " + contentType + "\r\nContent-Length: " + contentLength + "\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = socket.getInputStream();
            ByteArrayOutputStream answer = new ByteArrayOutputStream();
            byte[] buffer = new byte[4096];
            for (int n; (n = in.read(buffer)) > 0 && answer.size() < 65536; ) {
                answer.write(buffer, 0, n);
                if (new String(answer.toByteArray(), StandardCharsets.US_ASCII).contains("}}")) {
                    break;
                }
            }
            return answer.toString(StandardCharsets.US_ASCII);
        }
    }
}
