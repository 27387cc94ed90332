package dev.tokenmeter.edge.auth;

import java.util.List;
import java.util.Set;

/**
 * The models a caller may use (issue 17, ADR 0077): its plan's allow-list and its service key's. An empty or absent
 * list allows every model; when both are set a model must be on both. An entry admits the name itself and every name
 * the price card resolves to it through {@code model_alias} (so {@code gpt-4o-mini} admits
 * {@code gpt-4o-mini-2024-07-18}); a dated snapshot on the list admits only that snapshot, not the moving alias.
 *
 * <p>Bounds (admin API and V20's check): at most {@link #MAX_MODELS} entries of 1..{@link #MAX_MODEL_CHARS}
 * characters of the model alphabet (ADR 0053).
 */
public record ModelAllowList(Set<String> plan, Set<String> key) {

    public static final int MAX_MODELS = 100;
    public static final int MAX_MODEL_CHARS = 100;
    public static final ModelAllowList ANY = new ModelAllowList(Set.of(), Set.of());

    public ModelAllowList {
        plan = plan == null ? Set.of() : Set.copyOf(plan);
        key = key == null ? Set.of() : Set.copyOf(key);
    }

    /** From the stored arrays (null = no list). */
    public static ModelAllowList of(String[] plan, String[] key) {
        if ((plan == null || plan.length == 0) && (key == null || key.length == 0)) {
            return ANY;
        }
        return new ModelAllowList(plan == null ? Set.of() : Set.of(plan), key == null ? Set.of() : Set.of(key));
    }

    public boolean unrestricted() {
        return plan.isEmpty() && key.isEmpty();
    }

    /**
     * @param requested the name the caller sent
     * @param resolved  the priced model its alias resolves it to (null when none, or when only a default price would
     *                  price it: a default never widens a list)
     */
    public boolean admits(String requested, String resolved) {
        return admitsBy(plan, requested, resolved) && admitsBy(key, requested, resolved);
    }

    private static boolean admitsBy(Set<String> list, String requested, String resolved) {
        return list.isEmpty() || list.contains(requested) || (resolved != null && list.contains(resolved));
    }

    /** The problem with a list an admin sends, or null when it is within bounds. */
    public static String problem(List<String> models) {
        if (models.size() > MAX_MODELS) {
            return "at most " + MAX_MODELS + " models";
        }
        for (String m : models) {
            if (m == null || m.isEmpty() || m.length() > MAX_MODEL_CHARS || !m.chars().allMatch(ModelAllowList::modelChar)) {
                return "each model must be 1.." + MAX_MODEL_CHARS + " characters of [A-Za-z0-9._:/-]";
            }
        }
        return null;
    }

    private static boolean modelChar(int c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':'
                || c == '/' || c == '-';
    }
}
