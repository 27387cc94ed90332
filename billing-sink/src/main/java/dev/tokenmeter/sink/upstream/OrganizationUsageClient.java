package dev.tokenmeter.sink.upstream;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;


/**
 * Reads OpenAI's organization Usage API ({@code /v1/organization/usage/completions}, {@code /embeddings}, {@code /images}, ...) and Costs
 * API ({@code /v1/organization/costs}) with an admin key, following {@code next_page} until {@code has_more} is
 * false. The key goes only into the Authorization header: it is never logged nor put in an exception message.
 */
public final class OrganizationUsageClient implements AutoCloseable {

    /** More pages than this for one read means the upstream is looping: refuse rather than read forever. */
    static final int MAX_PAGES = 1_000;
    /** Longest answer body read (bytes of text); the 31-bucket pages of a busy organization are far smaller. */
    static final int MAX_BODY_CHARS = 32 * 1024 * 1024;

    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS);

    private final String baseUrl;
    private final String adminKey;
    private final HttpClient http;
    private final Duration timeout;

    public OrganizationUsageClient(String baseUrl, String adminKey, Duration timeout) {
        this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.adminKey = adminKey;
        this.timeout = timeout;
        this.http = HttpClient.newBuilder().connectTimeout(timeout).version(HttpClient.Version.HTTP_1_1).build();
    }

    /** One result of a bucket, with the bucket's start (epoch seconds) beside it. */
    public record Result(long bucketStartEpochS, JsonNode result) {
    }

    /**
     * Every result of every bucket of {@code path} ({@code /v1/organization/...}) from {@code startEpochS} to
     * {@code endEpochS}, daily buckets, with the extra query (e.g. {@code group_by=model}).
     */
    public List<Result> readAll(String path, long startEpochS, long endEpochS, String extraQuery) {
        List<Result> out = new ArrayList<>();
        String page = null;
        for (int pages = 0; ; pages++) {
            if (pages >= MAX_PAGES) {
                throw new UpstreamReadException(path + ": more than " + MAX_PAGES + " pages; refusing to read on");
            }
            String query = "start_time=" + startEpochS + "&end_time=" + endEpochS + "&bucket_width=1d&limit=31"
                    + (extraQuery.isEmpty() ? "" : "&" + extraQuery)
                    + (page == null ? "" : "&page=" + URLEncoder.encode(page, StandardCharsets.UTF_8));
            JsonNode body = get(path, query);
            if (!"page".equals(body.path("object").asText()) || !body.path("data").isArray()) {
                throw new UpstreamReadException(path + ": the answer is not a page of buckets");
            }
            for (JsonNode bucket : body.path("data")) {
                if (!bucket.path("start_time").canConvertToLong() || !bucket.path("results").isArray()) {
                    throw new UpstreamReadException(path + ": a bucket without start_time or results");
                }
                long start = bucket.path("start_time").asLong();
                bucket.path("results").forEach(r -> out.add(new Result(start, r)));
            }
            if (!body.path("has_more").asBoolean(false)) {
                return out;
            }
            String next = body.path("next_page").asText(null);
            if (next == null || next.isEmpty() || next.equals(page)) {
                throw new UpstreamReadException(path + ": has_more without a new next_page");
            }
            page = next;
        }
    }

    private JsonNode get(String path, String query) {
        HttpRequest request = HttpRequest.newBuilder(URI.create(baseUrl + path + "?" + query))
                .header("Authorization", "Bearer " + adminKey).header("Accept", "application/json")
                .timeout(timeout).GET().build();
        HttpResponse<String> response;
        try {
            response = http.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new UpstreamReadException(path + ": " + e.getClass().getSimpleName() + " " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UpstreamReadException(path + ": interrupted");
        }
        String body = response.body();
        if (body.length() > MAX_BODY_CHARS) {
            throw new UpstreamReadException(path + ": answer of " + body.length() + " chars exceeds " + MAX_BODY_CHARS);
        }
        JsonNode json;
        try {
            json = JSON.readTree(body);
        } catch (IOException e) {
            json = null;
        }
        if (response.statusCode() != 200) {
            // OpenAI's 401 message quotes a masked key; drop anything key-like so no part of a key reaches a log.
            String message = json == null ? "" : json.path("error").path("message").asText("")
                    .replace(adminKey, "<redacted>").replaceAll("sk-[A-Za-z0-9_*.-]+", "<redacted>");
            throw new UpstreamReadException(path + ": HTTP " + response.statusCode()
                    + (message.isEmpty() ? "" : " " + message.substring(0, Math.min(200, message.length()))));
        }
        if (json == null) {
            throw new UpstreamReadException(path + ": the answer is not JSON");
        }
        return json;
    }

    @Override
    public void close() {
        http.close();
    }

    /** A read that failed; the message names the path and the cause, never the key. */
    public static final class UpstreamReadException extends RuntimeException {
        public UpstreamReadException(String message) {
            super(message);
        }
    }

}
