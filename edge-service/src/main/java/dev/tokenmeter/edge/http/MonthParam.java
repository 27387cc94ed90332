package dev.tokenmeter.edge.http;

import io.javalin.http.Context;

import java.time.Clock;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;

/** The {@code month=yyyy-MM} query parameter of the usage and pipeline routes: default the current UTC month. */
public final class MonthParam {

    private MonthParam() {
    }

    /** The month asked for, or null after answering 400 naming {@code month}. */
    public static YearMonth parseOrRespond(Context ctx, Clock clock) {
        try {
            String m = ctx.queryParam("month");
            return m == null ? YearMonth.now(clock.withZone(ZoneOffset.UTC)) : YearMonth.parse(m);
        } catch (DateTimeParseException e) {
            HttpErrors.respond(ctx, OpenAiError.invalidRequest("'month' must look like 2026-11.", "month"));
            return null;
        }
    }
}
