package dev.tokenmeter.edge.usage;

import dev.tokenmeter.events.validate.Labels;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The parameters of the OpenAI-shaped usage query ({@code start_time} given), parsed and bounded. Every bad value is
 * an {@link Invalid} naming its parameter (answered 400 in OpenAI's error shape). Bounds:
 * <ul>
 *   <li>{@code start_time}, {@code end_time}: unix seconds in [2020-01-01, 2100-01-01); end (exclusive) after start,
 *   default now; the range at most {@link #MAX_RANGE_DAYS} days. Start snaps down to its bucket's start.</li>
 *   <li>{@code bucket_width}: 1h | 1d | 1mo (default 1d); buckets are UTC hours, days, calendar months.</li>
 *   <li>{@code group_by}: any of model, key_source, user_id (admin only), project_id and one rollup dimension (a label
 *   key the aggregator rolls up, {@code ROLLUP_DIMENSIONS}); repeated or comma-separated, at most 4. project_id and a
 *   dimension come from the attribution rollups (ADR 0078), which are daily and carry no model or key source: with
 *   them, bucket_width is 1d or 1mo and model/key_source cannot be grouped by.</li>
 *   <li>{@code limit}: buckets per page, 1..744 (1h, default 24), 1..31 (1d, default 7), 1..24 (1mo, default 12).</li>
 *   <li>{@code page}: the {@code next_page} of the previous answer, at most 64 characters.</li>
 *   <li>{@code user_id}, {@code tenant_id}: at most 128 printable ASCII characters (tenant_id admin only).</li>
 * </ul>
 */
record UsageQuery(Width width, Instant start, Instant end, List<String> groupBy, int limit, Instant pageStart,
                  String userId, String tenantId, String dimension) {

    static final long MIN_TIME = 1_577_836_800L;      // 2020-01-01T00:00:00Z
    static final long MAX_TIME = 4_102_444_800L;      // 2100-01-01T00:00:00Z
    static final int MAX_RANGE_DAYS = 1_100;
    static final int MAX_ID_CHARS = 128;
    static final int MAX_PAGE_CHARS = 64;
    static final List<String> GROUPS = List.of("model", "key_source", "user_id", "project_id");
    static final int MAX_GROUPS = 4;
    private static final Set<String> PARAMS = Set.of("start_time", "end_time", "bucket_width", "group_by", "limit",
            "page", "user_id", "user", "tenant_id");

    /** A bad parameter: the message and the parameter's name. */
    static class Invalid extends Exception {
        final String param;

        Invalid(String message, String param) {
            super(message, null, false, false);
            this.param = param;
        }
    }

    enum Width {
        H1("1h", 24, 744), D1("1d", 7, 31), MO1("1mo", 12, 24);

        final String name;
        final int defaultLimit;
        final int maxLimit;

        Width(String name, int defaultLimit, int maxLimit) {
            this.name = name;
            this.defaultLimit = defaultLimit;
            this.maxLimit = maxLimit;
        }

        Instant floor(Instant t) {
            ZonedDateTime z = t.atZone(ZoneOffset.UTC);
            return switch (this) {
                case H1 -> t.truncatedTo(ChronoUnit.HOURS);
                case D1 -> t.truncatedTo(ChronoUnit.DAYS);
                case MO1 -> LocalDate.of(z.getYear(), z.getMonth(), 1).atStartOfDay(ZoneOffset.UTC).toInstant();
            };
        }

        Instant next(Instant bucketStart) {
            return switch (this) {
                case H1 -> bucketStart.plus(1, ChronoUnit.HOURS);
                case D1 -> bucketStart.plus(1, ChronoUnit.DAYS);
                case MO1 -> bucketStart.atZone(ZoneOffset.UTC).plusMonths(1).toInstant();
            };
        }

        static Width parse(String s) throws Invalid {
            for (Width w : values()) {
                if (w.name.equals(s)) {
                    return w;
                }
            }
            throw new Invalid("'bucket_width' must be 1h, 1d or 1mo.", "bucket_width");
        }
    }

    /** True when the request asks for the OpenAI-shaped answer (else the pre-existing {@code ?month=} answer). */
    static boolean requested(Map<String, List<String>> params) {
        return params.containsKey("start_time");
    }

    /**
     * @param admin  the admin listener: user_id grouping and the tenant_id filter allowed
     * @param caller the service key's user on the public listener (the only user it may read), null for the admin
     */
    static UsageQuery parse(Map<String, List<String>> params, boolean admin, String caller, Instant now) throws Invalid {
        for (String p : params.keySet()) {
            if (!PARAMS.contains(p)) {
                throw new Invalid("Unknown parameter '" + bounded(p) + "'; the usage query takes " + String.join(", ",
                        new java.util.TreeSet<>(PARAMS)) + ".", bounded(p));
            }
        }
        Width width = params.containsKey("bucket_width") ? Width.parse(single(params, "bucket_width")) : Width.D1;
        long startSec = seconds(params, "start_time");
        Instant start = width.floor(Instant.ofEpochSecond(startSec));
        Instant end;
        if (params.containsKey("end_time")) {
            long e = seconds(params, "end_time");
            if (e <= startSec) {
                throw new Invalid("'end_time' must be after 'start_time'.", "end_time");
            }
            end = Instant.ofEpochSecond(e);
        } else {
            end = now.isAfter(start) ? now : start.plusSeconds(1);
        }
        if (end.isAfter(start.plus(MAX_RANGE_DAYS, ChronoUnit.DAYS))) {
            throw new Invalid("The range from 'start_time' to 'end_time' may be at most " + MAX_RANGE_DAYS + " days.", "end_time");
        }
        Set<String> groups = new LinkedHashSet<>();
        String dimension = null;
        List<String> rawGroups = params.getOrDefault("group_by", List.of());
        for (String raw : rawGroups) {
            for (String g : raw.split(",", -1)) {
                String t = g.strip();
                if (GROUPS.contains(t)) {
                    if (t.equals("user_id") && !admin) {
                        throw new Invalid("'group_by=user_id' is for the admin usage query; a service key reads only its own user.", "group_by");
                    }
                    groups.add(t);
                } else if (Labels.isKey(t) && (dimension == null || dimension.equals(t))) {
                    dimension = t;
                } else {
                    throw new Invalid("'group_by' takes model, key_source, " + (admin ? "user_id, " : "")
                            + "project_id and at most one rollup dimension (a label key of at most "
                            + Labels.KEY_MAX_CHARS + " characters of [a-z0-9_.-], starting with a letter).", "group_by");
                }
            }
        }
        if (groups.size() + (dimension == null ? 0 : 1) > MAX_GROUPS) {
            throw new Invalid("At most " + MAX_GROUPS + " 'group_by' values.", "group_by");
        }
        boolean rollup = dimension != null || groups.contains("project_id");
        if (rollup && (groups.contains("model") || groups.contains("key_source"))) {
            throw new Invalid("'group_by' project_id and rollup dimensions come from the attribution rollups, which are per"
                    + " user, project and label only: they cannot be combined with model or key_source.", "group_by");
        }
        if (rollup && width == Width.H1) {
            throw new Invalid("'group_by' project_id and rollup dimensions have daily resolution: use bucket_width=1d or 1mo.",
                    "bucket_width");
        }
        List<String> groupBy = new ArrayList<>();
        for (String g : GROUPS) {
            if (groups.contains(g)) {
                groupBy.add(g);
            }
        }
        int limit = width.defaultLimit;
        if (params.containsKey("limit")) {
            String l = single(params, "limit");
            try {
                limit = Integer.parseInt(l);
            } catch (NumberFormatException e) {
                limit = -1;
            }
            if (limit < 1 || limit > width.maxLimit) {
                throw new Invalid("'limit' must be an integer from 1 to " + width.maxLimit + " for bucket_width=" + width.name + ".", "limit");
            }
        }
        Instant pageStart = start;
        if (params.containsKey("page")) {
            pageStart = decodePage(single(params, "page"), width, start, end);
        }
        String userId = params.containsKey("user_id") ? id(params, "user_id") : params.containsKey("user") ? id(params, "user") : null;
        String tenantId = params.containsKey("tenant_id") ? id(params, "tenant_id") : null;
        if (!admin) {
            if (tenantId != null) {
                throw new Invalid("'tenant_id' is for the admin usage query.", "tenant_id");
            }
            if (userId != null && !userId.equals(caller)) {
                throw new Forbidden();
            }
            userId = caller;
        }
        return new UsageQuery(width, start, end, List.copyOf(groupBy), limit, pageStart, userId, tenantId, dimension);
    }

    /** True when the page comes from the attribution rollups (project_id or a dimension grouped by), not the totals. */
    boolean rollup() {
        return dimension != null || groupBy.contains("project_id");
    }

    /** A service key asked for another user. */
    static final class Forbidden extends Invalid {
        Forbidden() {
            super("A service key can read only its own user's usage.", "user_id");
        }
    }

    /** The buckets of this page: from pageStart, at most limit, none starting at or after end. */
    List<Instant> pageBuckets() {
        List<Instant> out = new ArrayList<>();
        for (Instant b = pageStart; b.isBefore(end) && out.size() < limit; b = width.next(b)) {
            out.add(b);
        }
        return out;
    }

    /** The next page's cursor, or null when this page reaches the end. */
    String nextPage(List<Instant> buckets) {
        Instant after = width.next(buckets.get(buckets.size() - 1));
        return after.isBefore(end) ? encodePage(after) : null;
    }

    static String encodePage(Instant bucketStart) {
        return "page_" + Base64.getUrlEncoder().withoutPadding()
                .encodeToString(Long.toString(bucketStart.getEpochSecond()).getBytes(StandardCharsets.US_ASCII));
    }

    private static Instant decodePage(String page, Width width, Instant start, Instant end) throws Invalid {
        Invalid bad = new Invalid("'page' must be the next_page of a previous answer to the same query.", "page");
        if (page.length() > MAX_PAGE_CHARS || !page.startsWith("page_")) {
            throw bad;
        }
        Instant at;
        try {
            at = Instant.ofEpochSecond(Long.parseLong(new String(Base64.getUrlDecoder().decode(page.substring(5)),
                    StandardCharsets.US_ASCII)));
        } catch (IllegalArgumentException e) {
            throw bad;
        }
        if (at.isBefore(start) || !at.isBefore(end) || !width.floor(at).equals(at)) {
            throw bad;
        }
        return at;
    }

    private static String single(Map<String, List<String>> params, String name) throws Invalid {
        List<String> v = params.get(name);
        if (v.size() != 1) {
            throw new Invalid("'" + name + "' may be given once.", name);
        }
        return v.get(0);
    }

    private static long seconds(Map<String, List<String>> params, String name) throws Invalid {
        String s = single(params, name);
        long v;
        try {
            v = s.length() > 12 ? -1 : Long.parseLong(s);
        } catch (NumberFormatException e) {
            v = -1;
        }
        if (v < MIN_TIME || v >= MAX_TIME) {
            throw new Invalid("'" + name + "' must be unix seconds from " + MIN_TIME + " (2020-01-01) to before "
                    + MAX_TIME + " (2100-01-01).", name);
        }
        return v;
    }

    private static String id(Map<String, List<String>> params, String name) throws Invalid {
        String s = single(params, name);
        if (s.isEmpty() || s.length() > MAX_ID_CHARS || !s.chars().allMatch(c -> c > 0x20 && c < 0x7f)) {
            throw new Invalid("'" + name + "' must be 1 to " + MAX_ID_CHARS + " printable ASCII characters.", name);
        }
        return s;
    }

    private static String bounded(String s) {
        String t = s.length() > 40 ? s.substring(0, 40) : s;
        return t.replaceAll("[^A-Za-z0-9_.-]", "?");
    }
}
