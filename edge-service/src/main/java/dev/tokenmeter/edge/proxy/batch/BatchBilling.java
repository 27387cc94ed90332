package dev.tokenmeter.edge.proxy.batch;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tokenmeter.edge.pricing.ModelPrice;
import dev.tokenmeter.edge.pricing.PriceCard;
import dev.tokenmeter.edge.pricing.ServiceTier;
import dev.tokenmeter.edge.pricing.TokenUsage;
import dev.tokenmeter.edge.tokens.UsageParser;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;

/**
 * What a batch costs (ADR 0087): the ids that make its billing idempotent and the exact cost of its answered lines
 * at the model's {@link ServiceTier#BATCH} row.
 *
 * <ul>
 *   <li>The reservation of a batch is {@link #reservationId(String) named after the batch id}, so any edge that
 *       sees the batch end settles the same reservation.</li>
 *   <li>Each answered output line is one usage event whose id is {@link #eventId(String, String) a name-based UUID
 *       of (batch id, custom_id)}: reading the output file again, on this edge or another, yields the same ids,
 *       which the aggregator and the sink already deduplicate.</li>
 *   <li>A line that did not answer 200 with a usage (error file, failed, expired, cancelled) is not billed: its
 *       share of the reservation is released by settling the reservation to the sum of the billed lines.</li>
 * </ul>
 */
public final class BatchBilling {

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * One answered line of an output file, priced. {@code model}: the model whose batch row priced it (the answered
     * one, else the requested one); {@code requestedModel} the input line's (null when unknown), {@code answeredModel}
     * the answer's (null when absent).
     */
    public record BilledLine(String eventId, String customId, String model, TokenUsage usage, ModelPrice price,
                             long costNanoUsd, String requestedModel, String answeredModel) {
    }

    /** The priced lines, and the custom_ids of answered lines no batch row prices (to be flagged, never dropped). */
    public record Bill(List<BilledLine> lines, List<String> unpricedCustomIds) {
        /** Nothing answered (a batch without an output file). */
        public static final Bill EMPTY = new Bill(List.of(), List.of());

        /** The sum the batch's reservation settles to: exact, overflow throws. */
        public long totalNanoUsd() {
            long total = 0;
            for (BilledLine l : lines) {
                total = Math.addExact(total, l.costNanoUsd());
            }
            return total;
        }
    }

    private final PriceCard prices;

    public BatchBilling(PriceCard prices) {
        this.prices = prices;
    }

    /** The reservation held for a batch from its creation until the edge sees it end. */
    public static String reservationId(String batchId) {
        return name("tokenmeter-batch-reservation:" + batchId);
    }

    /** The usage event of one line: the same for every read of the same batch's output, on every edge. */
    public static String eventId(String batchId, String customId) {
        // The batch id's length first, so no (batch id, custom_id) pair can spell another pair's name.
        return name("tokenmeter-batch-line:" + batchId.length() + ":" + batchId + ":" + customId);
    }

    private static String name(String s) {
        return UUID.nameUUIDFromBytes(s.getBytes(StandardCharsets.UTF_8)).toString();
    }

    /** The batch row pricing {@code model} at {@code at}; empty when the price card has none (the batch is refused). */
    public Optional<ModelPrice> batchPrice(String model, Instant at) {
        return prices.priceAt(model, ServiceTier.BATCH, at);
    }

    /**
     * The answered lines of an output file (JSONL of {@code {id, custom_id, response: {status_code, body}, error}}):
     * those with status 200 and a usage, each priced at its answered model's batch row (else the requested one's,
     * looked up in {@code requestedModels} by custom_id; else its custom_id is listed as unpriced). A custom_id seen
     * twice is billed once. Lines that are not JSON objects with a custom_id are skipped.
     *
     * @param requestedModels the model each custom_id asked for in the input file (custom_id → model)
     */
    public Bill bill(String batchId, byte[] outputFile, java.util.Map<String, String> requestedModels, Instant at) {
        List<BilledLine> out = new ArrayList<>();
        List<String> unpriced = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (String raw : new String(outputFile, StandardCharsets.UTF_8).split("\n")) {
            if (raw.isBlank()) {
                continue;
            }
            JsonNode line;
            try {
                line = JSON.readTree(raw);
            } catch (JsonProcessingException e) {
                continue;
            }
            if (line == null || !line.isObject() || !line.path("custom_id").isTextual()) {
                continue;
            }
            String customId = line.get("custom_id").asText();
            JsonNode response = line.path("response");
            if (response.path("status_code").asInt() != 200 || !seen.add(customId)) {
                continue;
            }
            JsonNode body = response.path("body");
            Optional<TokenUsage> usage = UsageParser.fromResponseBody(body);
            if (usage.isEmpty()) {
                continue;
            }
            String answered = body.path("model").isTextual() ? body.get("model").asText() : null;
            String requested = requestedModels.get(customId);
            Optional<ModelPrice> price = answered == null ? Optional.empty() : batchPrice(answered, at);
            String model = answered;
            if (price.isEmpty() && requested != null) {
                price = batchPrice(requested, at);
                model = requested;
            }
            if (price.isEmpty()) {
                unpriced.add(customId);
                continue;
            }
            out.add(new BilledLine(eventId(batchId, customId), customId, model, usage.get(), price.get(),
                    price.get().costNanoUsd(usage.get()), requested, answered));
        }
        return new Bill(List.copyOf(out), List.copyOf(unpriced));
    }
}
