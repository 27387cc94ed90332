package dev.tokenmeter.edge.admin;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tokenmeter.edge.admin.AccountStore.Overrides;
import dev.tokenmeter.edge.admin.JsonBody.Given;
import dev.tokenmeter.edge.admin.ModelPriceStore.AliasRow;
import dev.tokenmeter.edge.admin.ModelPriceStore.PriceRow;
import dev.tokenmeter.edge.pricing.ServiceTier;
import dev.tokenmeter.edge.admin.PlanStore.PlanFields;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Instant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/** The admin API's body checks without an engine: what is accepted, and the 400 (and its field) for what is not. */
class AdminBodiesTest {

    private static final Instant NOW = Instant.parse("2026-06-01T12:00:00Z");

    private static JsonNode json(String s) {
        return JsonBody.object(s.getBytes(StandardCharsets.UTF_8));
    }

    private static void refused(ThrowingCallable call, int status, String param, String messagePart) {
        AdminError e = catchThrowableOfType(AdminError.class, call);
        assertThat(e).as("refused").isNotNull();
        assertThat(e.error.status()).isEqualTo(status);
        assertThat(e.error.param()).isEqualTo(param);
        assertThat(e.error.message()).contains(messagePart);
    }

    @Test
    void theBodyMustBeAJsonObject() {
        refused(() -> json("[1,2]"), 400, null, "must be a JSON object");
        refused(() -> json("\"x\""), 400, null, "must be a JSON object");
        refused(() -> json(""), 400, null, "must be a JSON object");
        refused(() -> json("{\"a\":"), 400, null, "not valid JSON");
        assertThat(json("{}").isObject()).isTrue();
    }

    @Test
    void moneyIsAnExactDecimalStringOrIntegerNanoUsd_neverAFloat() {
        assertThat(JsonBody.money(json("{\"c_usd\":\"12.50\"}"), "c")).isEqualTo(new Given<>(true, 12_500_000_000L));
        assertThat(JsonBody.money(json("{\"c_nano_usd\":7}"), "c")).isEqualTo(new Given<>(true, 7L));
        assertThat(JsonBody.money(json("{\"c_usd\":\"0.000000001\"}"), "c")).isEqualTo(new Given<>(true, 1L));
        refused(() -> JsonBody.money(json("{\"c_usd\":12.5}"), "c"), 400, "c_usd", "no floating point");
        refused(() -> JsonBody.money(json("{\"c_nano_usd\":1.5}"), "c"), 400, "c_nano_usd", "must be an integer");
        refused(() -> JsonBody.money(json("{\"c_usd\":\"1\",\"c_nano_usd\":1}"), "c"), 400, "c_usd", "not both");
        refused(() -> JsonBody.money(json("{\"c_nano_usd\":-1}"), "c"), 400, "c_usd", "must not be negative");
        refused(() -> JsonBody.money(json("{\"c_usd\":\"12.5.0\"}"), "c"), 400, "c_usd", "'c_usd': ");
    }

    @Test
    void absentMoneyKeepsAndNullMoneyClears() {
        assertThat(JsonBody.money(json("{}"), "c")).isEqualTo(new Given<Long>(false, null));
        assertThat(JsonBody.money(json("{\"c_usd\":null}"), "c")).isEqualTo(new Given<Long>(true, null));
        // One null and one value: the value counts.
        assertThat(JsonBody.money(json("{\"c_usd\":null,\"c_nano_usd\":5}"), "c")).isEqualTo(new Given<>(true, 5L));
    }

    @Test
    void positiveAndNonNegativeIntegers() {
        assertThat(JsonBody.positiveLong(json("{\"n\":3}"), "n")).isEqualTo(new Given<>(true, 3L));
        assertThat(JsonBody.positiveLong(json("{\"n\":null}"), "n")).isEqualTo(new Given<Long>(true, null));
        assertThat(JsonBody.positiveLong(json("{}"), "n")).isEqualTo(new Given<Long>(false, null));
        refused(() -> JsonBody.positiveLong(json("{\"n\":0}"), "n"), 400, "n", "positive integer");
        refused(() -> JsonBody.positiveLong(json("{\"n\":\"3\"}"), "n"), 400, "n", "positive integer");
        refused(() -> JsonBody.positiveLong(json("{\"n\":1e30}"), "n"), 400, "n", "positive integer");
        assertThat(JsonBody.nonNegative(json("{\"p\":0}"), "p", true)).isZero();
        assertThat(JsonBody.nonNegative(json("{}"), "p", false)).isNull();
        refused(() -> JsonBody.nonNegative(json("{}"), "p", true), 400, "p", "is required");
        refused(() -> JsonBody.nonNegative(json("{\"p\":-1}"), "p", false), 400, "p", "non-negative");
    }

    @Test
    void requiredTextIsNonBlankAndStripped() {
        assertThat(JsonBody.requiredText(json("{\"t\":\"  x \"}"), "t")).isEqualTo("x");
        refused(() -> JsonBody.requiredText(json("{\"t\":\"  \"}"), "t"), 400, "t", "is required");
        refused(() -> JsonBody.requiredText(json("{\"t\":5}"), "t"), 400, "t", "is required");
    }

    @Test
    void planFields_checkTheRangesOfPercentAndRequestsPerMinute() {
        assertThat(PlanRoutes.fields(json("{\"monthly_credit_usd\":\"5\",\"requests_per_minute\":60,\"tokens_per_minute\":9,"
                + "\"soft_limit_percent\":100,\"display_name\":\"Five\"}")))
                .isEqualTo(new PlanFields("Five", 5_000_000_000L, 60, 9L, 100));
        assertThat(PlanRoutes.fields(json("{}"))).isEqualTo(new PlanFields(null, null, null, null, null));
        refused(() -> PlanRoutes.fields(json("{\"soft_limit_percent\":101}")), 400, "soft_limit_percent", "between 1 and 100");
        refused(() -> PlanRoutes.fields(json("{\"requests_per_minute\":2147483648}")), 400, "requests_per_minute", "too large");
    }

    @Test
    void planCacheFields_ttlNullTurnsItOff_percentIsZeroToHundred() { // issue 19
        assertThat(PlanRoutes.fields(json("{\"response_cache_ttl_seconds\":3600,\"response_cache_any_request\":true,"
                + "\"cache_hit_price_percent\":0}")).cache())
                .isEqualTo(new PlanStore.CacheFields(new Given<>(true, 3600), true, 0));
        assertThat(PlanRoutes.fields(json("{\"response_cache_ttl_seconds\":null}")).cache())
                .isEqualTo(new PlanStore.CacheFields(new Given<>(true, null), null, null));
        assertThat(PlanRoutes.fields(json("{}")).cache()).isEqualTo(PlanStore.CacheFields.NONE);
        refused(() -> PlanRoutes.fields(json("{\"response_cache_ttl_seconds\":2592001}")), 400, "response_cache_ttl_seconds", "between 1 and");
        refused(() -> PlanRoutes.fields(json("{\"response_cache_ttl_seconds\":0}")), 400, "response_cache_ttl_seconds", "positive");
        refused(() -> PlanRoutes.fields(json("{\"cache_hit_price_percent\":101}")), 400, "cache_hit_price_percent", "between 0");
        refused(() -> PlanRoutes.fields(json("{\"cache_hit_price_percent\":50.5}")), 400, "cache_hit_price_percent", "integer");
        refused(() -> PlanRoutes.fields(json("{\"response_cache_any_request\":\"yes\"}")), 400, "response_cache_any_request", "true or false");
    }

    @Test
    void userOverrides_absentKeeps_nullClears() {
        Overrides o = UserRoutes.overrides(json("{\"monthly_credit_override_usd\":null,\"requests_per_minute_override\":7}"));
        assertThat(o.monthlyCreditNanoUsd()).isEqualTo(new Given<Long>(true, null));
        assertThat(o.requestsPerMinute()).isEqualTo(new Given<>(true, 7));
        assertThat(o.tokensPerMinute()).isEqualTo(new Given<Long>(false, null));
        assertThat(UserRoutes.overrides(json("{\"requests_per_minute_override\":2147483647}")).requestsPerMinute())
                .isEqualTo(new Given<>(true, Integer.MAX_VALUE));
        refused(() -> UserRoutes.overrides(json("{\"requests_per_minute_override\":2147483648}")), 400,
                "requests_per_minute_override", "too large");
    }

    @Test
    void aliasRows_areANameOrAPrefixPattern_notInThePast() { // issue 16
        assertThat(ModelPriceRoutes.alias(json("{\"alias\":\"gpt-4o-mini-*\",\"model\":\"gpt-4o-mini\","
                + "\"effective_from\":\"2026-06-01T12:00:00Z\"}"), NOW))
                .isEqualTo(new AliasRow("gpt-4o-mini-*", Instant.parse("2026-06-01T12:00:00Z"), "gpt-4o-mini"));
        refused(() -> ModelPriceRoutes.alias(json("{\"alias\":\"gpt-*-mini\",\"model\":\"m\","
                + "\"effective_from\":\"2026-06-01T12:00:00Z\"}"), NOW), 400, "alias", "[A-Za-z0-9._:/-]");
        refused(() -> ModelPriceRoutes.alias(json("{\"alias\":\"*\",\"model\":\"m\","
                + "\"effective_from\":\"2026-06-01T12:00:00Z\"}"), NOW), 400, "alias", "");
        refused(() -> ModelPriceRoutes.alias(json("{\"alias\":\"a\",\"model\":\"m m\","
                + "\"effective_from\":\"2026-06-01T12:00:00Z\"}"), NOW), 400, "model", "");
        refused(() -> ModelPriceRoutes.alias(json("{\"alias\":\"a\",\"model\":\"m\","
                + "\"effective_from\":\"2026-06-01T11:00:00Z\"}"), NOW), 400, "effective_from", "must not be in the past");
    }

    @Test
    void priceRows_areNotInThePast_andGetADefaultVersion() {
        PriceRow p = ModelPriceRoutes.row(json("{\"model\":\"m\",\"effective_from\":\"2026-06-01T11:59:30Z\","
                + "\"input_nano_usd_per_token\":150}"), NOW);
        assertThat(p).isEqualTo(new PriceRow("m", ServiceTier.STANDARD, Instant.parse("2026-06-01T11:59:30Z"), 150, null, null,
                "m@2026-06-01T11:59:30Z"));
        assertThat(ModelPriceRoutes.row(json("{\"model\":\"m\",\"service_tier\":\"flex\",\"effective_from\":\"2026-06-01T12:00:00Z\","
                + "\"input_nano_usd_per_token\":75}"), NOW))
                .isEqualTo(new PriceRow("m", ServiceTier.FLEX, Instant.parse("2026-06-01T12:00:00Z"), 75, null, null,
                        "m@2026-06-01T12:00:00Z:flex"));
        refused(() -> ModelPriceRoutes.row(json("{\"model\":\"m\",\"service_tier\":\"default\",\"effective_from\":\"2026-06-01T12:00:00Z\","
                + "\"input_nano_usd_per_token\":75}"), NOW), 400, "service_tier", "must be one of");
        refused(() -> ModelPriceRoutes.row(json("{\"model\":\"m\",\"effective_from\":\"2026-06-01T11:58:59Z\","
                + "\"input_nano_usd_per_token\":150}"), NOW), 400, "effective_from", "must not be in the past");
        refused(() -> ModelPriceRoutes.row(json("{\"model\":\"m\",\"effective_from\":\"tomorrow\","
                + "\"input_nano_usd_per_token\":150}"), NOW), 400, "effective_from", "ISO-8601");
        refused(() -> ModelPriceRoutes.row(json("{\"model\":\"m\",\"effective_from\":\"2026-07-01T00:00:00Z\"}"), NOW),
                400, "input_nano_usd_per_token", "is required");
    }

    @Test
    void priceRows_takeADivisorOf1To1000_default1() {
        String row = "{\"model\":\"m\",\"service_tier\":\"batch\",\"effective_from\":\"2026-06-01T12:00:00Z\","
                + "\"input_nano_usd_per_token\":150,\"cached_input_nano_usd_per_token\":75";
        assertThat(ModelPriceRoutes.row(json(row + "}"), NOW).priceDivisor()).isEqualTo(1);
        assertThat(ModelPriceRoutes.row(json(row + ",\"price_divisor\":2}"), NOW))
                .isEqualTo(new PriceRow("m", ServiceTier.BATCH, Instant.parse("2026-06-01T12:00:00Z"), 150, 75L, null,
                        "m@2026-06-01T12:00:00Z:batch", 2));
        assertThat(ModelPriceRoutes.row(json(row + ",\"price_divisor\":1000}"), NOW).priceDivisor()).isEqualTo(1000);
        refused(() -> ModelPriceRoutes.row(json(row + ",\"price_divisor\":1001}"), NOW), 400, "price_divisor", "at most 1000");
        refused(() -> ModelPriceRoutes.row(json(row + ",\"price_divisor\":0}"), NOW), 400, "price_divisor", "positive integer");
        refused(() -> ModelPriceRoutes.row(json(row + ",\"price_divisor\":1.5}"), NOW), 400, "price_divisor", "positive integer");
    }
}
