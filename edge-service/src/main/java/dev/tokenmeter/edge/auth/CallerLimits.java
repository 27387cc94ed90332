package dev.tokenmeter.edge.auth;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Set;
import java.util.TreeSet;

/**
 * The spend controls that apply to a caller's key (issue 17, ADR 0077), as the usage API shows them to the key's
 * holder: the plan's and the key's model allow-lists (null = every model) and whether the key has expired. A small view
 * so the usage API needs no knowledge of where the limits live.
 */
public final class CallerLimits {

    private static final ObjectMapper JSON = new ObjectMapper();

    private CallerLimits() {
    }

    /** {@code {"plan_allowed_models": [...] | null, "key_allowed_models": [...] | null}}. */
    public static ObjectNode json(Caller caller) {
        ObjectNode n = JSON.createObjectNode();
        put(n, "plan_allowed_models", caller.models().plan());
        put(n, "key_allowed_models", caller.models().key());
        return n;
    }

    /**
     * As {@link #json(Caller)} plus the key's monthly budget (ADR 0081): {@code key_monthly_budget_nano_usd} and
     * {@code key_monthly_budget_usd} (null = none) and {@code key_used_nano_usd} / {@code key_used_usd}, the key's
     * service-credit spend this month (null when it cannot be read).
     */
    public static ObjectNode json(Caller caller, java.util.OptionalLong keyUsedNanoUsd) {
        ObjectNode n = json(caller);
        money(n, "key_monthly_budget", caller.keyBudgetNanoUsd());
        money(n, "key_used", keyUsedNanoUsd.isPresent() ? keyUsedNanoUsd.getAsLong() : null);
        return n;
    }

    /**
     * As {@link #json(Caller, java.util.OptionalLong)} plus the tenant's shared monthly budget (ADR 0081):
     * {@code tenant_monthly_budget_nano_usd} / {@code tenant_monthly_budget_usd} (null = none) and
     * {@code tenant_used_nano_usd} / {@code tenant_used_usd}, the tenant's service-credit spend this month (null without
     * a budget, or when it cannot be read).
     */
    public static ObjectNode json(Caller caller, java.util.OptionalLong keyUsedNanoUsd, Long tenantBudgetNanoUsd,
                                  java.util.OptionalLong tenantUsedNanoUsd) {
        ObjectNode n = json(caller, keyUsedNanoUsd);
        money(n, "tenant_monthly_budget", tenantBudgetNanoUsd);
        money(n, "tenant_used", tenantBudgetNanoUsd != null && tenantUsedNanoUsd.isPresent() ? tenantUsedNanoUsd.getAsLong() : null);
        return n;
    }

    private static void money(ObjectNode n, String prefix, Long nanoUsd) {
        if (nanoUsd == null) {
            n.putNull(prefix + "_nano_usd");
            n.putNull(prefix + "_usd");
        } else {
            n.put(prefix + "_nano_usd", nanoUsd);
            n.put(prefix + "_usd", dev.tokenmeter.events.money.Money.formatUsd(nanoUsd));
        }
    }

    private static void put(ObjectNode n, String field, Set<String> models) {
        if (models.isEmpty()) {
            n.putNull(field);
        } else {
            new TreeSet<>(models).forEach(n.putArray(field)::add);
        }
    }
}
