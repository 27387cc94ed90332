package dev.tokenmeter.testkit.openai;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.LongSupplier;

/**
 * The fake's own account of the calls it answered, served as OpenAI's organization Usage API
 * ({@code GET /v1/organization/usage/completions}, {@code /embeddings}, and the media kinds {@code /images},
 * {@code /audio_speeches}, {@code /audio_transcriptions}, {@code /moderations}: {@link MediaCall}) and Costs API
 * ({@code GET /v1/organization/costs}): pages of time buckets, {@code has_more}, an opaque {@code next_page}.
 * It counts what the fake answered, never what the edge says, so a reconciliation against it is an independent
 * check. A {@link Drift} makes it report extra requests or another price, as a real upstream that disagrees would.
 *
 * <p>Prices: the 2025 standard list price of the model's family (nano-USD per token, the V3 seed's numbers),
 * or its published tier price ({@link #TIER_PRICES}); a model with no price costs nothing and appears in usage only. Costs are daily buckets of
 * line items {@code "<answered model>, input" | ", cached input" | ", output"}, each {@code amount.value} a binary
 * float, as OpenAI's are: the sum of each call's cost in USD as a double, so it can carry float noise past the 9th
 * decimal ({@code 0.06307500000000001}) while its nearest whole nano-USD is the exact cost.
 */
final class UpstreamLedger {

    /** One answered call; {@code epochS} is when it was answered. */
    record Call(long epochS, String apiKey, String projectId, String model, String serviceTier, boolean embeddings,
                Usage usage, boolean batch) {
        /** A synchronous call (not a Batch API line). */
        Call(long epochS, String apiKey, String projectId, String model, String serviceTier, boolean embeddings, Usage usage) {
            this(epochS, apiKey, projectId, model, serviceTier, embeddings, usage, false);
        }
    }

    /** Per token, nano-USD, standard tier, by family. Same numbers as V3__seed_openai_list_prices_2025.sql. */
    static final Map<String, long[]> PRICES = Map.ofEntries(
            Map.entry("gpt-5", new long[] {1250, 125, 10000}),
            Map.entry("gpt-5-mini", new long[] {250, 25, 2000}),
            Map.entry("gpt-5-nano", new long[] {50, 5, 400}),
            Map.entry("gpt-4.1", new long[] {2000, 500, 8000}),
            Map.entry("gpt-4.1-mini", new long[] {400, 100, 1600}),
            Map.entry("gpt-4.1-nano", new long[] {100, 25, 400}),
            Map.entry("gpt-4o", new long[] {2500, 1250, 10000}),
            Map.entry("gpt-4o-mini", new long[] {150, 75, 600}),
            Map.entry("o3", new long[] {2000, 500, 8000}),
            Map.entry("o4-mini", new long[] {1100, 275, 4400}),
            Map.entry("text-embedding-3-small", new long[] {20, 0, 0}),
            Map.entry("text-embedding-3-large", new long[] {130, 0, 0}));

    /**
     * Tier prices where OpenAI publishes one (2025 list: o3 flex $1.00/$0.25/$4.00, gpt-4o-mini priority
     * $0.25/$0.125/$1.00 per 1M; the demo seeds the same rows); any other tier is charged the standard price.
     */
    static final Map<String, long[]> TIER_PRICES = Map.of(
            "o3|flex", new long[] {1000, 250, 4000},
            "gpt-4o-mini|priority", new long[] {250, 125, 1000});

    static final String DEFAULT_PROJECT_ID = "proj_fake_default";

    private final List<Call> calls = new ArrayList<>();
    /** Guarded by {@code calls}. */
    private final List<MediaCall> mediaCalls = new ArrayList<>();
    private final LongSupplier nowEpochS;
    private volatile Drift drift = Drift.NONE;

    UpstreamLedger(LongSupplier nowEpochS) {
        this.nowEpochS = nowEpochS;
    }

    void record(Call call) {
        synchronized (calls) {
            calls.add(call);
        }
    }

    /**
     * One image, speech, transcription/translation or moderation call the fake answered, as OpenAI's Usage API
     * counts it in {@code /v1/organization/usage/<kind>}: {@code images} with the image
     * count, size and source ({@code image.generation}, {@code image.edit}), {@code audio_speeches} by characters,
     * {@code audio_transcriptions} by the audio's seconds (rounded to the nearest, halves up, as whisper-1 is billed),
     * {@code moderations} by input tokens. {@code usage} and {@code nonTextInputTokens} (image or audio input tokens,
     * part of {@code usage.promptTokens}) price the token-billed models (gpt-image-1, gpt-4o(-mini)-transcribe).
     */
    record MediaCall(long epochS, String apiKey, String projectId, String kind, String model, String source, String size,
                     long images, long characters, long seconds, Usage usage, long nonTextInputTokens) {
    }

    /**
     * nano-USD per token {text input, cached input, output, image or audio input} of the token-billed media models
     * (OpenAI's 2025 list prices, the V27_1 and V34 seed's numbers).
     */
    static final Map<String, long[]> MEDIA_TOKEN_PRICES = Map.of(
            "gpt-image-1", new long[] {5000, 1250, 40000, 10000},
            "gpt-4o-transcribe", new long[] {2500, 0, 10000, 6000},
            "gpt-4o-mini-transcribe", new long[] {1250, 0, 5000, 3000});

    /** nano-USD per character (speech, V27_2) or per second of audio (whisper-1, V34). */
    static final Map<String, Long> MEDIA_UNIT_PRICES = Map.of("tts-1", 15_000L, "tts-1-hd", 30_000L, "whisper-1", 100_000L);

    void recordMedia(MediaCall call) {
        synchronized (calls) {
            mediaCalls.add(call);
        }
    }

    void drift(Drift drift) {
        this.drift = drift;
    }

    void clear() {
        synchronized (calls) {
            calls.clear();
            mediaCalls.clear();
        }
    }

    private List<Call> snapshot() {
        synchronized (calls) {
            return List.copyOf(calls);
        }
    }

    /** The family a snapshot name belongs to (reverse of {@code FakeCall.SNAPSHOTS}), else the name itself. */
    static String family(String model) {
        for (Map.Entry<String, String> e : FakeCall.SNAPSHOTS.entrySet()) {
            if (e.getValue().equals(model)) {
                return e.getKey();
            }
        }
        return model;
    }

    /** nano-USD per token {input, cached input, output} the fake charges for this model and tier now (drift applied). */
    long[] price(String model, String serviceTier) {
        String family = family(model);
        long[] p = TIER_PRICES.getOrDefault(family + "|" + serviceTier, PRICES.getOrDefault(family, new long[] {0, 0, 0}));
        int percent = drift.pricePercent();
        return new long[] {p[0] * percent / 100, p[1] * percent / 100, p[2] * percent / 100};
    }

    /**
     * One call's cost per line item {input, cached input, output} in nano-USD at {@code p} (nano-USD per token). A
     * batch call is billed half of it (the Batch API's list price is half the standard one for every model, OpenAI
     * pricing page, 2025): half of an odd item (62.5 for gpt-5's cached token) is not a whole nano-USD, so the call's
     * sum is halved once and rounded half to even, as the edge's batch rows (ADR 0087), and the half nano-USD the
     * rounding adds or drops goes to the first item with a fractional half. The items then sum to the call's cost.
     */
    static long[] callItems(Usage u, long[] p, boolean batch) {
        long[] exact = {
            Math.multiplyExact(u.promptTokens() - u.cachedPromptTokens(), p[0]),
            Math.multiplyExact(u.cachedPromptTokens(), p[1]),
            Math.multiplyExact(u.completionTokens(), p[2])};
        if (!batch) {
            return exact;
        }
        long sum = Math.addExact(Math.addExact(exact[0], exact[1]), exact[2]);
        long half = sum / 2 + ((sum & 1) == 1 && ((sum / 2) & 1) == 1 ? 1 : 0); // half to even, sum >= 0
        long[] items = {exact[0] / 2, exact[1] / 2, exact[2] / 2};
        long rest = half - items[0] - items[1] - items[2];
        for (int i = 0; i < 3 && rest != 0; i++) {
            if ((exact[i] & 1) == 1) {
                items[i] += rest;
                rest = 0;
            }
        }
        return items;
    }

    // ------------------------------------------------------------------ query parameters

    static final class Query {
        final Map<String, List<String>> params = new LinkedHashMap<>();

        Query(String rawQuery) {
            if (rawQuery == null || rawQuery.isEmpty()) {
                return;
            }
            for (String pair : rawQuery.split("&")) {
                if (pair.isEmpty()) {
                    continue;
                }
                int eq = pair.indexOf('=');
                String name = URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq), StandardCharsets.UTF_8);
                String value = eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
                if (name.endsWith("[]")) {
                    name = name.substring(0, name.length() - 2);
                }
                params.computeIfAbsent(name, k -> new ArrayList<>()).add(value);
            }
        }

        String one(String name) {
            List<String> v = params.get(name);
            if (v == null || v.isEmpty()) {
                return null;
            }
            if (v.size() > 1) {
                throw new BadRequestException("Parameter " + name + " given more than once.", name, null);
            }
            return v.get(0);
        }

        List<String> many(String name) {
            List<String> out = new ArrayList<>();
            for (String v : params.getOrDefault(name, List.of())) {
                for (String part : v.split(",")) {
                    if (!part.isBlank()) {
                        out.add(part.trim());
                    }
                }
            }
            return out;
        }

        long epochS(String name, Long dflt) {
            String v = one(name);
            if (v == null) {
                if (dflt == null) {
                    throw new BadRequestException("Missing required parameter: '" + name + "'.", name, null);
                }
                return dflt;
            }
            try {
                long s = Long.parseLong(v);
                if (s < 0) {
                    throw new NumberFormatException();
                }
                return s;
            } catch (NumberFormatException e) {
                throw new BadRequestException("Invalid '" + name + "': expected a Unix time in seconds.", name, null);
            }
        }
    }

    // ------------------------------------------------------------------ pages

    /** {@code kind} is {@code completions} or {@code embeddings}. */
    ObjectNode usagePage(String kind, String rawQuery) {
        Query q = new Query(rawQuery);
        List<String> groupBy = q.many("group_by");
        Set<String> allowed = kind.equals("completions")
                ? Set.of("model", "project_id", "api_key_id", "service_tier", "batch")
                : Set.of("model", "project_id", "api_key_id");
        for (String g : groupBy) {
            if (!allowed.contains(g)) {
                throw new BadRequestException("Invalid 'group_by' value: " + g + ".", "group_by", null);
            }
        }
        List<String> models = q.many("models");
        List<String> projects = q.many("project_ids");
        boolean embeddings = kind.equals("embeddings");
        Pager pager = usagePager(q);
        long widthS = pager.widthS;
        Drift d = drift;
        ObjectNode page = pager.page();
        ArrayNode data = page.putArray("data");
        List<Call> all = snapshot();
        for (long start = pager.first; start < pager.stop; start += widthS) {
            ObjectNode bucket = bucket(data, start, Math.min(start + widthS, pager.end));
            // group key -> {requests, input, cached, output}
            Map<List<Object>, long[]> groups = new TreeMap<>(UpstreamLedger::compareKeys);
            for (Call c : all) {
                if (c.embeddings() != embeddings || pager.outside(c.epochS(), start)
                        || (!models.isEmpty() && !models.contains(c.model()))
                        || (!projects.isEmpty() && !projects.contains(c.projectId()))) {
                    continue;
                }
                List<Object> key = new ArrayList<>();
                for (String g : groupBy) {
                    key.add(switch (g) {
                        case "model" -> c.model();
                        case "project_id" -> c.projectId();
                        case "api_key_id" -> keyId(c.apiKey());
                        case "service_tier" -> c.serviceTier();
                        case "batch" -> c.batch();
                        default -> Boolean.FALSE;
                    });
                }
                long[] sums = groups.computeIfAbsent(key, k -> new long[4]);
                long n = 1 + d.extraRequestsPerCall();
                sums[0] += n;
                sums[1] += n * c.usage().promptTokens();
                sums[2] += n * c.usage().cachedPromptTokens();
                sums[3] += n * c.usage().completionTokens();
            }
            ArrayNode results = bucket.putArray("results");
            for (Map.Entry<List<Object>, long[]> g : groups.entrySet()) {
                ObjectNode r = results.addObject();
                r.put("object", "organization.usage." + kind + ".result");
                r.put("input_tokens", g.getValue()[1]);
                if (!embeddings) {
                    r.put("output_tokens", g.getValue()[3]);
                    r.put("input_cached_tokens", g.getValue()[2]);
                    r.put("input_audio_tokens", 0);
                    r.put("output_audio_tokens", 0);
                }
                r.put("num_model_requests", g.getValue()[0]);
                for (String field : embeddings ? List.of("project_id", "user_id", "api_key_id", "model")
                        : List.of("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")) {
                    int at = groupBy.indexOf(field);
                    Object v = at < 0 ? null : g.getKey().get(at);
                    if (v == null) {
                        r.putNull(field);
                    } else if (v instanceof Boolean b) {
                        r.put(field, b);
                    } else {
                        r.put(field, (String) v);
                    }
                }
            }
        }
        pager.finish(page);
        return page;
    }

    /** A Usage API page's buckets: {@code bucket_width} 1m, 1h or 1d (default), each with its limits. */
    private Pager usagePager(Query q) {
        String width = q.one("bucket_width") == null ? "1d" : q.one("bucket_width");
        return switch (width) {
            case "1m" -> new Pager(q, 60, 60, 1440);
            case "1h" -> new Pager(q, 3600, 24, 168);
            case "1d" -> new Pager(q, 86_400, 7, 31);
            default -> throw new BadRequestException("Invalid 'bucket_width': must be one of 1m, 1h, 1d.", "bucket_width", null);
        };
    }

    /**
     * {@code GET /v1/organization/usage/<kind>} for a media kind ({@code images}, {@code audio_speeches},
     * {@code audio_transcriptions}, {@code moderations}): per bucket and group
     * ({@code model}, {@code project_id}, {@code api_key_id}; images also {@code size}, {@code source}) the
     * {@code num_model_requests} and the kind's own quantity — {@code images}, {@code characters}, {@code seconds}
     * or {@code input_tokens} — of the calls answered (drift's extra requests included), with OpenAI's field names.
     */
    ObjectNode mediaUsagePage(String kind, String rawQuery) {
        Query q = new Query(rawQuery);
        List<String> groupBy = q.many("group_by");
        Set<String> allowed = kind.equals("images") ? Set.of("model", "project_id", "api_key_id", "size", "source")
                : Set.of("model", "project_id", "api_key_id");
        for (String g : groupBy) {
            if (!allowed.contains(g)) {
                throw new BadRequestException("Invalid 'group_by' value: " + g + ".", "group_by", null);
            }
        }
        List<String> models = q.many("models");
        List<String> projects = q.many("project_ids");
        Pager pager = usagePager(q);
        Drift d = drift;
        ObjectNode page = pager.page();
        ArrayNode data = page.putArray("data");
        List<MediaCall> all;
        synchronized (calls) {
            all = List.copyOf(mediaCalls);
        }
        String quantity = switch (kind) {
            case "images" -> "images";
            case "audio_speeches" -> "characters";
            case "audio_transcriptions" -> "seconds";
            default -> "input_tokens";
        };
        List<String> fields = kind.equals("images")
                ? List.of("source", "size", "project_id", "user_id", "api_key_id", "model")
                : List.of("project_id", "user_id", "api_key_id", "model");
        for (long start = pager.first; start < pager.stop; start += pager.widthS) {
            ObjectNode bucket = bucket(data, start, Math.min(start + pager.widthS, pager.end));
            Map<List<Object>, long[]> groups = new TreeMap<>(UpstreamLedger::compareKeys);
            for (MediaCall c : all) {
                if (!c.kind().equals(kind) || pager.outside(c.epochS(), start)
                        || (!models.isEmpty() && !models.contains(c.model()))
                        || (!projects.isEmpty() && !projects.contains(c.projectId()))) {
                    continue;
                }
                List<Object> key = new ArrayList<>();
                for (String g : groupBy) {
                    key.add(switch (g) {
                        case "model" -> c.model();
                        case "project_id" -> c.projectId();
                        case "size" -> c.size();
                        case "source" -> c.source();
                        default -> keyId(c.apiKey());
                    });
                }
                long[] sums = groups.computeIfAbsent(key, k -> new long[2]);
                long n = 1 + d.extraRequestsPerCall();
                sums[0] += n;
                sums[1] += n * switch (kind) {
                    case "images" -> c.images();
                    case "audio_speeches" -> c.characters();
                    case "audio_transcriptions" -> c.seconds();
                    default -> c.usage().promptTokens();
                };
            }
            ArrayNode results = bucket.putArray("results");
            for (Map.Entry<List<Object>, long[]> g : groups.entrySet()) {
                ObjectNode r = results.addObject();
                r.put("object", "organization.usage." + kind + ".result");
                r.put(quantity, g.getValue()[1]);
                r.put("num_model_requests", g.getValue()[0]);
                for (String field : fields) {
                    int at = groupBy.indexOf(field);
                    if (at < 0) {
                        r.putNull(field);
                    } else {
                        r.put(field, (String) g.getKey().get(at));
                    }
                }
            }
        }
        pager.finish(page);
        return page;
    }

    /**
     * The Costs API's line items of one media call, nano-USD at its list price (drift's percent applied, integer
     * division, as {@link #price}): {@code "<model>, input" | ", cached input" | ", image input" | ", audio input" |
     * ", output"} for a token-billed model, {@code ", characters"} for speech, {@code ", seconds"} for whisper-1. A
     * moderation (free) or a model with no price has none.
     */
    Map<String, Long> mediaCostItems(MediaCall c, Drift d) {
        Map<String, Long> items = new LinkedHashMap<>();
        int percent = d.pricePercent();
        long n = 1 + d.extraRequestsPerCall();
        long[] p = MEDIA_TOKEN_PRICES.get(c.model());
        Long unit = MEDIA_UNIT_PRICES.get(c.model());
        if (p != null && !c.kind().equals("moderations")) {
            Usage u = c.usage();
            String nonText = c.kind().equals("images") ? "image input" : "audio input";
            long[][] lines = {
                {u.promptTokens() - u.cachedPromptTokens() - c.nonTextInputTokens(), p[0]},
                {u.cachedPromptTokens(), p[1]},
                {c.nonTextInputTokens(), p[3]},
                {u.completionTokens(), p[2]}};
            String[] names = {"input", "cached input", nonText, "output"};
            for (int i = 0; i < lines.length; i++) {
                if (lines[i][0] != 0) {
                    items.put(c.model() + ", " + names[i], Math.multiplyExact(n, Math.multiplyExact(lines[i][0], lines[i][1] * percent / 100)));
                }
            }
        } else if (unit != null) {
            boolean speech = c.kind().equals("audio_speeches");
            long units = speech ? c.characters() : c.seconds();
            if (units != 0) {
                items.put(c.model() + (speech ? ", characters" : ", seconds"), Math.multiplyExact(n, Math.multiplyExact(units, unit * percent / 100)));
            }
        }
        return items;
    }

    ObjectNode costsPage(String rawQuery) {
        Query q = new Query(rawQuery);
        String width = q.one("bucket_width");
        if (width != null && !width.equals("1d")) {
            throw new BadRequestException("Invalid 'bucket_width': only 1d is supported.", "bucket_width", null);
        }
        List<String> groupBy = q.many("group_by");
        for (String g : groupBy) {
            if (!g.equals("project_id") && !g.equals("line_item")) {
                throw new BadRequestException("Invalid 'group_by' value: " + g + ".", "group_by", null);
            }
        }
        List<String> projects = q.many("project_ids");
        Pager pager = new Pager(q, 86_400, 7, 180);
        Drift d = drift;
        ObjectNode page = pager.page();
        ArrayNode data = page.putArray("data");
        List<Call> all = snapshot();
        for (long start = pager.first; start < pager.stop; start += 86_400) {
            ObjectNode bucket = bucket(data, start, Math.min(start + 86_400, pager.end));
            Map<List<Object>, double[]> groups = new TreeMap<>(UpstreamLedger::compareKeys);
            for (Call c : all) {
                if (c.epochS() < start || c.epochS() >= start + 86_400 || c.epochS() >= pager.end
                        || (!projects.isEmpty() && !projects.contains(c.projectId()))) {
                    continue;
                }
                long n = 1 + d.extraRequestsPerCall();
                Usage u = c.usage();
                long[] tokens = {u.promptTokens() - u.cachedPromptTokens(), u.cachedPromptTokens(), u.completionTokens()};
                long[] items = callItems(u, price(c.model(), c.serviceTier()), "batch".equals(c.serviceTier()));
                String[] names = {"input", "cached input", "output"};
                for (int i = 0; i < 3; i++) {
                    if (tokens[i] == 0) {
                        continue;
                    }
                    List<Object> key = new ArrayList<>();
                    for (String g : groupBy) {
                        key.add(g.equals("project_id") ? c.projectId() : c.model() + ", " + names[i]);
                    }
                    long nano = Math.multiplyExact(n, items[i]);
                    groups.computeIfAbsent(key, k -> new double[1])[0] += nano / 1e9;
                }
            }
            addMediaCosts(groups, groupBy, projects, start, pager.end, d);
            ArrayNode results = bucket.putArray("results");
            for (Map.Entry<List<Object>, double[]> g : groups.entrySet()) {
                ObjectNode r = results.addObject();
                r.put("object", "organization.costs.result");
                ObjectNode amount = r.putObject("amount");
                amount.put("value", g.getValue()[0]);
                amount.put("currency", "usd");
                int li = groupBy.indexOf("line_item");
                int pi = groupBy.indexOf("project_id");
                if (li < 0) {
                    r.putNull("line_item");
                } else {
                    r.put("line_item", (String) g.getKey().get(li));
                }
                if (pi < 0) {
                    r.putNull("project_id");
                } else {
                    r.put("project_id", (String) g.getKey().get(pi));
                }
            }
        }
        pager.finish(page);
        return page;
    }

    /** Adds the media calls answered in {@code [start, start + 1 day)} (and before {@code end}) to a costs bucket's groups. */
    private void addMediaCosts(Map<List<Object>, double[]> groups, List<String> groupBy, List<String> projects, long start,
                               long end, Drift d) {
        List<MediaCall> all;
        synchronized (calls) {
            all = List.copyOf(mediaCalls);
        }
        for (MediaCall c : all) {
            if (c.epochS() < start || c.epochS() >= start + 86_400 || c.epochS() >= end
                    || (!projects.isEmpty() && !projects.contains(c.projectId()))) {
                continue;
            }
            for (Map.Entry<String, Long> item : mediaCostItems(c, d).entrySet()) {
                List<Object> key = new ArrayList<>();
                for (String g : groupBy) {
                    key.add(g.equals("project_id") ? c.projectId() : item.getKey());
                }
                groups.computeIfAbsent(key, k -> new double[1])[0] += item.getValue() / 1e9;
            }
        }
    }

    /** The key's public id as OpenAI shows it ({@code key_} + a stable hash), never the key itself. */
    static String keyId(String apiKey) {
        return "key_" + Integer.toHexString(apiKey.hashCode() & 0x7fffffff);
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static int compareKeys(List<Object> a, List<Object> b) {
        for (int i = 0; i < a.size(); i++) {
            Object x = a.get(i);
            Object y = b.get(i);
            if (x == null || y == null) {
                if (x != y) {
                    return x == null ? -1 : 1;
                }
                continue;
            }
            int c = ((Comparable) x).compareTo(y);
            if (c != 0) {
                return c;
            }
        }
        return 0;
    }

    private static ObjectNode bucket(ArrayNode data, long start, long end) {
        ObjectNode bucket = data.addObject();
        bucket.put("object", "bucket");
        bucket.put("start_time", start);
        bucket.put("end_time", end);
        return bucket;
    }

    /** start_time (aligned down to the width), end_time (default now), limit buckets per page, page cursor. */
    private final class Pager {
        final long first;
        final long stop;
        final long end;
        final long widthS;

        Pager(Query q, long widthS, int defaultLimit, int maxLimit) {
            this.widthS = widthS;
            long start = q.epochS("start_time", null);
            long now = nowEpochS.getAsLong();
            this.end = q.epochS("end_time", now + 1);
            if (end <= start) {
                throw new BadRequestException("Invalid 'end_time': must be after start_time.", "end_time", null);
            }
            long from = start - Math.floorMod(start, widthS);
            String cursor = q.one("page");
            if (cursor != null) {
                try {
                    from = Long.parseLong(new String(Base64.getUrlDecoder().decode(cursor), StandardCharsets.US_ASCII));
                } catch (IllegalArgumentException e) {
                    throw new BadRequestException("Invalid 'page' cursor.", "page", null);
                }
                if (from < start - widthS || from > end || Math.floorMod(from, widthS) != 0) {
                    throw new BadRequestException("Invalid 'page' cursor.", "page", null);
                }
            }
            int limit = defaultLimit;
            String l = q.one("limit");
            if (l != null) {
                try {
                    limit = Integer.parseInt(l);
                } catch (NumberFormatException e) {
                    limit = -1;
                }
                if (limit < 1 || limit > maxLimit) {
                    throw new BadRequestException("Invalid 'limit': must be 1.." + maxLimit + ".", "limit", null);
                }
            }
            this.first = from;
            this.stop = Math.min(end, from + limit * widthS);
        }

        /** A call at {@code epochS} is not in the bucket starting at {@code start} (or is past end_time). */
        boolean outside(long epochS, long start) {
            return epochS < start || epochS >= start + widthS || epochS >= end;
        }

        ObjectNode page() {
            ObjectNode page = OpenAiWire.objectNode();
            page.put("object", "page");
            return page;
        }

        void finish(ObjectNode page) {
            boolean more = stop < end;
            page.put("has_more", more);
            if (more) {
                page.put("next_page", Base64.getUrlEncoder().withoutPadding()
                        .encodeToString(Long.toString(stop).getBytes(StandardCharsets.US_ASCII)));
            } else {
                page.putNull("next_page");
            }
        }
    }
}
