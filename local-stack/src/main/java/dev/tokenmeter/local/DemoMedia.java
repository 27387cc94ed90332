package dev.tokenmeter.local;

import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Issue 16 in the demo, after the main traffic: one call of each media kind the edge bills, on the service's credit
 * by {@link DemoControls#PROJECT_USER} (the pro plan, no allow-list): an image generation (gpt-image-1, by image
 * tokens), a transcription by the minute (whisper-1) and one by tokens (gpt-4o-mini-transcribe), a speech by
 * characters (tts-1) and a moderation (free, still one event). Their event ids join the traffic's, so the
 * reconciliation checks them like the rest; the statement shows them, and the upstream reconciliation compares them
 * with the fake upstream's /usage/images, /audio_speeches, /audio_transcriptions, /moderations and costs (ADR 0086).
 */
final class DemoMedia {

    /** What each call is, in the order sent: label, path, content type, body. */
    private record MediaCall(String label, String path, String contentType, String body) {
    }

    private static final String BOUNDARY = "tokenmeter-demo-media";
    private static final List<MediaCall> CALLS = List.of(
            new MediaCall("image gpt-image-1", "/v1/images/generations", "application/json",
                    "{\"model\":\"gpt-image-1\",\"prompt\":\"A lighthouse drawn as a bar chart\",\"quality\":\"low\",\"size\":\"1024x1024\"}"),
            new MediaCall("transcription whisper-1", "/v1/audio/transcriptions", "multipart/form-data; boundary=" + BOUNDARY,
                    transcription("whisper-1", 4_500)), // the fake hears 1,000 bytes a second: 4.5 s, billed 5 s
            new MediaCall("transcription gpt-4o-mini-transcribe", "/v1/audio/transcriptions", "multipart/form-data; boundary=" + BOUNDARY,
                    transcription("gpt-4o-mini-transcribe", 3_200)),
            new MediaCall("speech tts-1", "/v1/audio/speech", "application/json",
                    "{\"model\":\"tts-1\",\"voice\":\"alloy\",\"input\":\"Every call billed exactly once.\"}"),
            new MediaCall("moderation", "/v1/moderations", "application/json", "{\"input\":\"Is this demo text fine?\"}"));

    private final URI edge;
    private final DemoTraffic.Caller caller;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5))
            .version(HttpClient.Version.HTTP_1_1).build();

    DemoMedia(URI edge, DemoTraffic.Caller caller) {
        this.edge = edge;
        this.caller = caller;
    }

    /** Sends the calls once and prints one line; {@code ok} only if every call was answered 200 with its event id. */
    Outcome run(PrintStream out) throws Exception {
        Map<Integer, Long> byStatus = new TreeMap<>();
        List<String> eventIds = new ArrayList<>();
        List<String> answered = new ArrayList<>();
        for (MediaCall call : CALLS) {
            HttpResponse<byte[]> r = http.send(HttpRequest.newBuilder(edge.resolve(call.path())).timeout(Duration.ofSeconds(60))
                    .header("Authorization", "Bearer " + caller.apiKey()).header("Content-Type", call.contentType())
                    .POST(HttpRequest.BodyPublishers.ofString(call.body())).build(), HttpResponse.BodyHandlers.ofByteArray());
            byStatus.merge(r.statusCode(), 1L, Long::sum);
            r.headers().firstValue("x-tokenmeter-event-id").ifPresent(eventIds::add);
            answered.add(call.label() + " " + r.statusCode());
        }
        out.println();
        out.println("media calls: " + String.join(", ", answered) + " (" + caller.userId() + ", service credit; "
                + eventIds.size() + " events)");
        boolean ok = byStatus.equals(Map.of(200, (long) CALLS.size())) && eventIds.size() == CALLS.size();
        return new Outcome(ok, new DemoTraffic.Report(CALLS.size(), byStatus, Map.of(), Set.copyOf(eventIds), 0));
    }

    /** Whether every media call was answered and billed, and the calls as traffic for the reconciliation. */
    record Outcome(boolean ok, DemoTraffic.Report report) {
    }

    /** A transcription upload of {@code audioBytes} bytes of (fake) audio. */
    private static String transcription(String model, int audioBytes) {
        return "--" + BOUNDARY + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n" + model + "\r\n--" + BOUNDARY
                + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"demo.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n"
                + "a".repeat(audioBytes) + "\r\n--" + BOUNDARY + "--\r\n";
    }
}
