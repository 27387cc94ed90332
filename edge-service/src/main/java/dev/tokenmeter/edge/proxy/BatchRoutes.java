package dev.tokenmeter.edge.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tokenmeter.edge.responsecache.CachePolicy;
import dev.tokenmeter.edge.auth.Caller;
import dev.tokenmeter.edge.auth.ModelAllowList;
import dev.tokenmeter.edge.call.MeteredCall;
import dev.tokenmeter.edge.call.Metering;
import dev.tokenmeter.edge.http.OpenAiError;
import dev.tokenmeter.edge.http.QuotaHeaders;
import dev.tokenmeter.edge.http.Rejections;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.PriceCard;
import dev.tokenmeter.edge.pricing.ServiceTier;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.edge.proxy.batch.BatchBilling;
import dev.tokenmeter.edge.proxy.batch.BatchInput;
import dev.tokenmeter.edge.proxy.batch.BatchInputException;
import dev.tokenmeter.edge.proxy.batch.BatchStore;
import dev.tokenmeter.edge.quota.Decision;
import dev.tokenmeter.edge.quota.QuotaLimits;
import dev.tokenmeter.edge.quota.ReserveRequest;
import dev.tokenmeter.edge.quota.Route;
import dev.tokenmeter.edge.tokens.RequestEstimate;
import dev.tokenmeter.edge.tokens.TokenCounter;
import dev.tokenmeter.events.KeySource;
import dev.tokenmeter.events.Outcome;
import dev.tokenmeter.events.UsageSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.regex.Pattern;

/**
 * The Batch API through the edge (issue 16, ADR 0087): {@code POST /v1/files} (purpose=batch, bounded by
 * {@link BatchInput} before anything goes upstream), {@code GET /v1/files/{id}} and {@code /content}, {@code POST
 * /v1/batches}, {@code GET /v1/batches}, {@code GET /v1/batches/{id}}, {@code POST /v1/batches/{id}/cancel}, on the
 * service's key for the caller's service credit. Files and batches are answered only to the user who made them
 * ({@link BatchStore}; 404 to anyone else, as the upstream answers another key).
 *
 * <p>Create-then-reserve: the create goes upstream first (the batch id exists only then), then its estimate (each
 * line estimated as a sync call of it would be, at the model's batch row) is reserved under the name of the batch
 * for {@link #BATCH_RESERVATION_TTL}; a refused reservation cancels the batch upstream at once (it is still
 * validating) and answers 429 (or 402-like insufficient_quota) as a sync call over its limit would be, with its
 * REJECTED event. A read that sees the batch end bills it: one SUCCEEDED event per answered output line (name-based
 * ids: a second read publishes the same ids, which the pipeline deduplicates), and the reservation settles once to
 * their sum (released when nothing was answered).
 */
final class BatchRoutes {

    private static final Logger LOG = LoggerFactory.getLogger(BatchRoutes.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A batch answers within 24 h; its reservation holds its estimate an hour longer (ADR 0087). */
    static final Duration BATCH_RESERVATION_TTL = Duration.ofHours(25);
    /** Batch uploads held in memory at once; one more is shed (503) like a call past MAX_CALLS_IN_FLIGHT. */
    static final int MAX_BATCH_UPLOADS_IN_FLIGHT = 4;
    /** Multipart framing allowed around the file, beyond MAX_BATCH_FILE_BYTES. */
    private static final long FORM_OVERHEAD_BYTES = 64 * 1024;
    /** The largest JSON body of a create. */
    private static final int MAX_CREATE_BYTES = 64 * 1024;
    /** File and batch ids as OpenAI writes them; anything else is a 404 without an upstream call. */
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9_-]{1,128}");
    private static final Set<String> END_STATES = Set.of("completed", "failed", "cancelled", "expired");

    private final Metering metering;
    private final PriceCard prices;
    private final TokenCounter tokenCounter;
    private final UpstreamKeys keys;
    private final UpstreamCall upstream;
    private final BatchStore store;
    private final BatchBilling billing;
    private final long maxFileBytes;
    private final int maxLines;
    private final long defaultMaxCompletionTokens;
    private final Semaphore uploads = new Semaphore(MAX_BATCH_UPLOADS_IN_FLIGHT);
    /** Batches being billed on this edge now. */
    private final Set<String> billingNow = ConcurrentHashMap.newKeySet();

    BatchRoutes(Metering metering, PriceCard prices, TokenCounter tokenCounter, UpstreamKeys keys, UpstreamCall upstream,
                BatchStore store, long maxFileBytes, int maxLines, long defaultMaxCompletionTokens) {
        this.metering = metering;
        this.prices = prices;
        this.tokenCounter = tokenCounter;
        this.keys = keys;
        this.upstream = upstream;
        this.store = store;
        this.billing = new BatchBilling(prices);
        this.maxFileBytes = maxFileBytes;
        this.maxLines = maxLines;
        this.defaultMaxCompletionTokens = defaultMaxCompletionTokens;
    }

    /** True for the paths this class serves (any method: a wrong one is answered here, in OpenAI's shape). */
    static boolean handles(String path) {
        return path.equals("/v1/files") || path.startsWith("/v1/files/")
                || path.equals("/v1/batches") || path.startsWith("/v1/batches/");
    }

    /** Serves one request of an authenticated caller. */
    void handle(ProxyExchange ctx, Caller caller, String method, String path, String query) throws IOException, InterruptedException {
        String[] p = path.substring(1).split("/", -1); // v1, files|batches, [id], [content|cancel]
        boolean files = p[1].equals("files");
        if (p.length > 2 && !ID.matcher(p[2]).matches()) {
            AnswerRelay.respondError(ctx, notFound(files, p[2]));
            return;
        }
        if (files && p.length == 2 && method.equals("POST")) {
            upload(ctx, caller);
        } else if (files && (p.length == 3 || (p.length == 4 && p[3].equals("content"))) && method.equals("GET")) {
            if (!store.ownsFile(caller.userId(), p[2])) {
                AnswerRelay.respondError(ctx, notFound(true, p[2]));
                return;
            }
            relay(ctx, upstream.get(path, auth()));
        } else if (!files && p.length == 2 && method.equals("POST")) {
            create(ctx, caller);
        } else if (!files && p.length == 2 && method.equals("GET")) {
            list(ctx, caller, query);
        } else if (!files && p.length == 3 && method.equals("GET")) {
            BatchStore.Job job = store.batch(caller.userId(), p[2]).orElse(null);
            if (job == null) {
                AnswerRelay.respondError(ctx, notFound(false, p[2]));
                return;
            }
            Read read = retrieve(job);
            AnswerRelay.respond(ctx, read.status(), read.body());
        } else if (!files && p.length == 4 && p[3].equals("cancel") && method.equals("POST")) {
            if (store.batch(caller.userId(), p[2]).isEmpty()) {
                AnswerRelay.respondError(ctx, notFound(false, p[2]));
                return;
            }
            relay(ctx, upstream.post(path, auth(), "application/json", new byte[0]));
        } else {
            AnswerRelay.respondError(ctx, OpenAiError.unsupportedEndpoint(method, path));
        }
    }

    // ------------------------------------------------------------------ files

    private void upload(ProxyExchange ctx, Caller caller) throws IOException, InterruptedException {
        if (!uploads.tryAcquire()) {
            AnswerRelay.respondError(ctx, OpenAiError.overloaded(OpenAiProxyHandler.OVERLOADED_RETRY));
            return;
        }
        try {
            String contentType = ctx.requestHeader("Content-Type");
            byte[] body = readBounded(ctx, maxFileBytes + FORM_OVERHEAD_BYTES);
            if (body == null) {
                AnswerRelay.respondError(ctx, fileError(new BatchInputException("The batch input file is larger than "
                        + maxFileBytes + " bytes (MAX_BATCH_FILE_BYTES).", "file", "file_too_large")));
                return;
            }
            MultipartForm.Form form;
            try {
                form = MultipartForm.parse(body, MultipartForm.boundary(contentType));
            } catch (IllegalArgumentException e) {
                AnswerRelay.respondError(ctx, OpenAiError.invalidRequest(e.getMessage(), "file"));
                return;
            }
            String purpose = form.field("purpose");
            if (!"batch".equals(purpose)) {
                AnswerRelay.respondError(ctx, OpenAiError.invalidRequest(
                        "This edge takes files with purpose 'batch' only (the Batch API, ADR 0087).", "purpose"));
                return;
            }
            List<MultipartForm.FilePart> parts = form.files().stream().filter(f -> f.name().equals("file")).toList();
            if (parts.size() != 1) {
                AnswerRelay.respondError(ctx, OpenAiError.invalidRequest("Send exactly one 'file' part.", "file"));
                return;
            }
            try {
                BatchInput.parse(parts.getFirst().content(body), maxFileBytes, maxLines);
            } catch (BatchInputException e) {
                AnswerRelay.respondError(ctx, fileError(e));
                return;
            }
            Upstream.Answer answer = upstream.post("/v1/files", auth(), contentType, body);
            byte[] out = readAll(answer);
            if (answer.status() == 200) {
                String id = JSON.readTree(out).path("id").asText("");
                if (ID.matcher(id).matches()) {
                    store.recordFile(id, caller.userId(), caller.apiKeyId(), "batch");
                }
            }
            ctx.respond(answer.status(), "application/json", out);
        } finally {
            uploads.release();
        }
    }

    // ------------------------------------------------------------------ create

    /** A batch's input file read back and priced: the lines' requested models and the estimate at batch rows. */
    private record Priced(Map<String, String> requestedModels, long estimateNanoUsd, String firstModel) {
    }

    private void create(ProxyExchange ctx, Caller caller) throws IOException, InterruptedException {
        byte[] body = readBounded(ctx, MAX_CREATE_BYTES);
        JsonNode req = body == null ? null : parseJson(body);
        if (req == null || !req.isObject()) {
            AnswerRelay.respondError(ctx, OpenAiError.invalidRequest("The body must be a JSON object of at most "
                    + MAX_CREATE_BYTES + " bytes.", null));
            return;
        }
        String inputFileId = req.path("input_file_id").asText("");
        if (!ID.matcher(inputFileId).matches() || !store.ownsFile(caller.userId(), inputFileId)) {
            AnswerRelay.respondError(ctx, new OpenAiError(404, "No such File object: " + inputFileId, "invalid_request_error",
                    "input_file_id", null, false, null));
            return;
        }
        Instant now = metering.now();
        Upstream.Answer content = upstream.get("/v1/files/" + inputFileId + "/content", auth());
        byte[] input = readAll(content);
        if (content.status() != 200) {
            ctx.respond(content.status(), "application/json", input);
            return;
        }
        Priced priced;
        try {
            priced = price(caller, BatchInput.parse(input, maxFileBytes, maxLines), now);
        } catch (BatchInputException e) {
            AnswerRelay.respondError(ctx, fileError(e));
            return;
        } catch (Refused r) {
            AnswerRelay.respondError(ctx, r.error);
            return;
        }
        if (priced.estimateNanoUsd() > QuotaLimits.MAX_CALL_NANO_USD) {
            AnswerRelay.respondError(ctx, new OpenAiError(400, "The batch's estimate is over the most one reservation may hold ("
                    + QuotaLimits.MAX_CALL_NANO_USD + " nano-USD); split the input file.", "invalid_request_error",
                    "input_file_id", "batch_too_large", false, null));
            return;
        }
        if (!metering.canRecord()) {
            AnswerRelay.respondError(ctx, OpenAiError.eventsUnavailable());
            return;
        }

        Upstream.Answer created = upstream.post("/v1/batches", auth(), "application/json", body);
        byte[] out = readAll(created);
        JsonNode batch = created.status() == 200 ? parseJson(out) : null;
        String batchId = batch == null ? "" : batch.path("id").asText("");
        if (!ID.matcher(batchId).matches()) {
            ctx.respond(created.status(), "application/json", out);
            return;
        }
        MeteredCall call = metering.start(caller, "/v1/batches").model(priced.firstModel());
        String reservationName = BatchBilling.reservationId(batchId);
        // Tokens 0: a batch does not count against the per-minute token limits (the Batch API has its own queue).
        Decision decision;
        try {
            decision = metering.quota().reserve(new ReserveRequest(caller.userId(), caller.apiKeyId(), priced.firstModel(),
                    priced.estimateNanoUsd(), 0, caller.keyBudgetNanoUsd() == null ? ReserveRequest.NO_KEY_BUDGET : caller.keyBudgetNanoUsd(),
                    ReserveRequest.NO_TENANT_BUDGET, reservationName, BATCH_RESERVATION_TTL.toMillis()), call.eventId());
        } catch (RuntimeException e) {
            LOG.warn("quota decision failed for batch {} of user {}: {}", batchId, caller.userId(), e.toString());
            decision = dev.tokenmeter.edge.call.QuotaGate.unavailable(Duration.ofSeconds(1));
        }
        QuotaHeaders.set(ctx::header, decision);
        if (!decision.admitted() || decision.route() != Route.SERVICE_CREDIT) {
            if (decision.admitted()) {
                metering.releaseQuietly(decision.reservationId(), call.eventId()); // the user's own key: not for batches
            }
            cancelQuietly(batchId);
            OpenAiError error = decision.admitted()
                    ? OpenAiError.insufficientQuota("Your service credit does not cover this batch's estimate.")
                    : Rejections.of(decision);
            call.reject(error, decision.admitted() ? "CREDIT_EXHAUSTED" : String.valueOf(decision.rejectReason()));
            ctx.header(QuotaHeaders.EVENT_ID, call.eventId());
            AnswerRelay.respondError(ctx, error);
            return;
        }
        try {
            store.recordBatch(new BatchStore.Job(batchId, caller.userId(), caller.apiKeyId(), caller.tenantId(), caller.project(),
                    inputFileId,
                    batch.path("endpoint").asText(""), decision.reservationId(), priced.estimateNanoUsd(), now, null));
        } catch (RuntimeException e) {
            LOG.error("batch {} of user {} could not be recorded; cancelled: {}", batchId, caller.userId(), e.toString());
            metering.releaseQuietly(decision.reservationId(), call.eventId());
            cancelQuietly(batchId);
            AnswerRelay.respondError(ctx, OpenAiError.internal("The edge could not record the batch; it was cancelled."));
            return;
        }
        ctx.respond(200, "application/json", out);
    }

    /** A line the edge cannot price or the caller may not use: the create is refused with this error. */
    private static final class Refused extends RuntimeException {
        final OpenAiError error;

        Refused(OpenAiError error) {
            super(error.message(), null, false, false);
            this.error = error;
        }
    }

    private Priced price(Caller caller, List<BatchInput.Line> lines, Instant at) {
        Map<String, String> requested = new HashMap<>();
        long estimate = 0;
        for (BatchInput.Line l : lines) {
            String model = l.model();
            ModelPrice price = prices.priceAt(model, ServiceTier.BATCH, at).orElseThrow(() -> new Refused(new OpenAiError(400,
                    "Line " + l.lineNumber() + " of the input file asks for model '" + model + "', which has no batch price at this edge.",
                    "invalid_request_error", "input_file_id", "model_not_found", false, null)));
            if (!caller.models().admits(model, prices.resolvedModel(model, at))) {
                throw new Refused(OpenAiError.modelNotAllowed(model));
            }
            RequestEstimate e = RequestEstimate.of(l.url(), model, l.body(), tokenCounter, defaultMaxCompletionTokens);
            estimate = Math.addExact(estimate, price.costNanoUsd(new TokenUsage(e.promptTokens(), 0, e.maxCompletionTokens(), 0,
                    e.mediaInputTokens())));
            requested.put(l.customId(), model);
        }
        return new Priced(requested, estimate, lines.getFirst().model());
    }

    // ------------------------------------------------------------------ retrieve, list

    private record Read(int status, byte[] body) {
    }

    /**
     * GET the batch upstream; when it has ended and is not billed yet, bill it. The files it names become the user's.
     * Its events are the batch creator's (key, tenant, project as at creation), whoever reads it.
     */
    private Read retrieve(BatchStore.Job job) throws IOException, InterruptedException {
        Caller caller = new Caller(job.apiKeyId(), job.userId(), job.tenantId(), true, CachePolicy.OFF, ModelAllowList.ANY,
                false, job.project());
        Upstream.Answer answer = upstream.get("/v1/batches/" + job.batchId(), auth());
        byte[] out = readAll(answer);
        JsonNode batch = answer.status() == 200 ? parseJson(out) : null;
        if (batch == null) {
            return new Read(answer.status(), out);
        }
        for (String f : List.of("output_file_id", "error_file_id")) {
            String id = batch.path(f).asText("");
            if (ID.matcher(id).matches()) {
                store.recordFile(id, caller.userId(), job.apiKeyId(), "batch_output");
            }
        }
        String status = batch.path("status").asText("");
        // One billing per batch at a time on this edge (a caller's read and the poller's); the state read again inside.
        if (job.billedAt() == null && END_STATES.contains(status) && billingNow.add(job.batchId())) {
            try {
                BatchStore.Job fresh = store.batch(job.userId(), job.batchId()).orElse(job);
                if (fresh.billedAt() == null) {
                    bill(caller, fresh, batch, status);
                }
            } finally {
                billingNow.remove(job.batchId());
            }
        }
        return new Read(200, out);
    }

    /**
     * One SUCCEEDED event per answered line of the output file (whatever the end status: OpenAI bills the answered
     * requests of a cancelled or expired batch too), then the reservation settles once to their sum, or is released
     * when nothing was answered. Events first, then the mark, then the settle: a crash between them publishes the same
     * ids again on the next read (deduplicated), and only the reader that marks the batch settles it.
     */
    private void bill(Caller caller, BatchStore.Job job, JsonNode batch, String status) throws IOException, InterruptedException {
        BatchBilling.Bill bill = BatchBilling.Bill.EMPTY;
        String outputFileId = batch.path("output_file_id").asText("");
        if (ID.matcher(outputFileId).matches()) {
            Upstream.Answer output = upstream.get("/v1/files/" + outputFileId + "/content", auth());
            byte[] outputBytes = readAll(output);
            Upstream.Answer input = upstream.get("/v1/files/" + job.inputFileId() + "/content", auth());
            byte[] inputBytes = readAll(input);
            if (output.status() != 200 || input.status() != 200) {
                LOG.warn("batch {} ended but its files could not be read ({} / {}); billed on a later read", job.batchId(),
                        output.status(), input.status());
                return;
            }
            Map<String, String> requested = new HashMap<>();
            for (BatchInput.Line l : BatchInput.parse(inputBytes, Long.MAX_VALUE, Integer.MAX_VALUE)) {
                requested.put(l.customId(), l.model());
            }
            bill = billing.bill(job.batchId(), outputBytes, requested, job.createdAt());
        }
        Instant endedAt = endedAt(batch, status);
        for (BatchBilling.BilledLine l : bill.lines()) {
            MeteredCall line = metering.job(caller, job.endpoint().isEmpty() ? "/v1/chat/completions" : job.endpoint(),
                    l.eventId(), endedAt, job.reservationId());
            line.model(l.requestedModel() != null ? l.requestedModel() : l.model()).price(l.price())
                    .keySource(KeySource.SERVICE_CREDIT).answeredModel(l.answeredModel())
                    .attribute("batch_id", job.batchId()).latencyMs(0);
            line.publish(Outcome.SUCCEEDED, 200, l.usage(), l.costNanoUsd(), UsageSource.REPORTED);
        }
        if (!bill.unpricedCustomIds().isEmpty()) {
            LOG.error("batch {}: {} answered lines have no batch price and were not billed", job.batchId(),
                    bill.unpricedCustomIds().size());
        }
        if (!store.markBilled(job.batchId(), status, bill.totalNanoUsd(), metering.now())) {
            return; // another read (or edge) billed it and settles
        }
        if (bill.lines().isEmpty()) {
            metering.releaseQuietly(job.reservationId(), job.batchId());
        } else {
            // Tokens 0 as reserved: a batch is outside the per-minute token limits.
            metering.quota().settle(job.reservationId(), bill.totalNanoUsd(), 0, null);
        }
    }

    private static Instant endedAt(JsonNode batch, String status) {
        String field = switch (status) {
            case "completed" -> "completed_at";
            case "failed" -> "failed_at";
            case "cancelled" -> "cancelled_at";
            default -> "expired_at";
        };
        long s = batch.path(field).asLong(0);
        return s > 0 ? Instant.ofEpochSecond(s) : Instant.now();
    }

    /** The caller's batches, newest first, each read upstream (and billed when it has ended): OpenAI's list page. */
    private void list(ProxyExchange ctx, Caller caller, String query) throws IOException, InterruptedException {
        int limit = 20;
        String after = null;
        for (String pair : query == null ? new String[0] : query.split("&")) {
            int eq = pair.indexOf('=');
            String name = eq < 0 ? pair : pair.substring(0, eq);
            String value = eq < 0 ? "" : java.net.URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
            if (name.equals("limit")) {
                try {
                    limit = Integer.parseInt(value);
                } catch (NumberFormatException e) {
                    limit = -1;
                }
                if (limit < 1 || limit > 100) {
                    AnswerRelay.respondError(ctx, OpenAiError.invalidRequest("'limit' must be 1..100.", "limit"));
                    return;
                }
            } else if (name.equals("after")) {
                after = value;
            }
        }
        List<BatchStore.Job> jobs = store.batches(caller.userId(), after, limit + 1);
        ObjectNode page = JSON.createObjectNode();
        page.put("object", "list");
        ArrayNode data = page.putArray("data");
        for (BatchStore.Job j : jobs.subList(0, Math.min(limit, jobs.size()))) {
            Read read = retrieve(j);
            if (read.status() != 200) {
                ctx.respond(read.status(), "application/json", read.body());
                return;
            }
            data.add(JSON.readTree(read.body()));
        }
        page.set("first_id", data.isEmpty() ? null : data.get(0).get("id"));
        page.set("last_id", data.isEmpty() ? null : data.get(data.size() - 1).get("id"));
        page.put("has_more", jobs.size() > limit);
        AnswerRelay.respond(ctx, 200, JSON.writeValueAsBytes(page));
    }

    /**
     * The poller's round (ADR 0087): reads every open batch (oldest first, at most {@code limit}) upstream, billing
     * those that ended, so a caller who never polls is billed before the reservation's TTL. Every edge may run it: the
     * events have name-based ids and only the reader that marks a batch billed settles it. Returns the batches read.
     */
    int pollOpen(int limit) {
        int read = 0;
        for (BatchStore.Job job : store.open(limit)) {
            try {
                retrieve(job);
                read++;
            } catch (IOException | RuntimeException e) {
                LOG.warn("polling batch {} failed: {}", job.batchId(), e.toString());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return read;
            }
        }
        return read;
    }

    // ------------------------------------------------------------------ helpers

    private Map<String, String> auth() {
        return Map.of("Authorization", "Bearer " + keys.serviceKey());
    }

    private void cancelQuietly(String batchId) {
        try {
            readAll(upstream.post("/v1/batches/" + batchId + "/cancel", auth(), "application/json", new byte[0]));
        } catch (IOException e) {
            LOG.warn("cancelling batch {} upstream failed: {}", batchId, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void relay(ProxyExchange ctx, Upstream.Answer answer) throws IOException {
        String type = answer.header("Content-Type");
        ctx.respond(answer.status(), type == null ? "application/octet-stream" : type, readAll(answer));
    }

    private static byte[] readAll(Upstream.Answer answer) throws IOException {
        try (InputStream in = answer.body()) {
            return in.readAllBytes();
        }
    }

    /** The request body, or null when it is longer than {@code max} bytes. */
    private static byte[] readBounded(ProxyExchange ctx, long max) throws IOException {
        if (ctx.requestContentLength() > max) {
            return null;
        }
        try (InputStream in = ctx.requestBody()) {
            byte[] b = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 16, max + 1));
            return b.length > max ? null : b;
        }
    }

    private static JsonNode parseJson(byte[] b) {
        try {
            return JSON.readTree(b);
        } catch (IOException e) {
            return null;
        }
    }

    private static OpenAiError fileError(BatchInputException e) {
        return new OpenAiError(400, e.getMessage(), "invalid_request_error", e.param(), e.code(), false, null);
    }

    private static OpenAiError notFound(boolean file, String id) {
        return new OpenAiError(404, file ? "No such File object: " + id : "No batch found with id '" + id + "'.",
                "invalid_request_error", file ? "id" : null, null, false, null);
    }
}
