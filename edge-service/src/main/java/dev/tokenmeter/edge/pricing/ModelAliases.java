package dev.tokenmeter.edge.pricing;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Effective-dated aliases from the names callers send to the model whose price rows price them (table
 * {@code model_alias}, ADR 0068). An alias is an exact name ({@code gpt-4o-mini-2024-07-18}) or a prefix pattern
 * ending in {@code *} ({@code gpt-4o-mini-*}). At an instant, each alias is the newest of its rows with
 * {@code effectiveFrom <= at}; of those matching a name, an exact alias wins, else the pattern with the longest
 * prefix. Immutable.
 */
public final class ModelAliases {

    /** One row: {@code alias} (name or {@code prefix*}) → {@code model} from {@code effectiveFrom}. */
    public record Alias(String alias, Instant effectiveFrom, String model) {
        public Alias {
            Objects.requireNonNull(alias, "alias");
            Objects.requireNonNull(effectiveFrom, "effectiveFrom");
            Objects.requireNonNull(model, "model");
            if (alias.isEmpty() || alias.equals("*") || alias.indexOf('*') != -1 && alias.indexOf('*') != alias.length() - 1) {
                throw new IllegalArgumentException("an alias is a name, or a non-empty prefix followed by one '*': " + alias);
            }
        }

        public boolean isPattern() {
            return alias.endsWith("*");
        }

        /** The prefix a pattern covers, or the exact name. */
        String stem() {
            return isPattern() ? alias.substring(0, alias.length() - 1) : alias;
        }
    }

    public static final ModelAliases NONE = new ModelAliases(List.of());

    /** Exact aliases by name, and patterns; each list newest first. */
    private final Map<String, List<Alias>> exact = new HashMap<>();
    /** Patterns by stem, longest stem first, each stem's rows newest first. */
    private final List<List<Alias>> patterns = new ArrayList<>();

    public ModelAliases(List<Alias> rows) {
        Map<String, List<Alias>> byPattern = new HashMap<>();
        for (Alias a : rows) {
            (a.isPattern() ? byPattern : exact).computeIfAbsent(a.stem(), k -> new ArrayList<>()).add(a);
        }
        Comparator<Alias> newestFirst = Comparator.comparing(Alias::effectiveFrom).reversed();
        exact.values().forEach(l -> l.sort(newestFirst));
        byPattern.values().forEach(l -> l.sort(newestFirst));
        patterns.addAll(byPattern.values());
        patterns.sort(Comparator.comparingInt((List<Alias> l) -> l.get(0).stem().length()).reversed());
    }

    /** The alias that names {@code name} at {@code at}: exact first, else the longest matching prefix pattern. */
    public Optional<Alias> match(String name, Instant at) {
        Optional<Alias> own = inForce(exact.get(name), at);
        if (own.isPresent()) {
            return own;
        }
        for (List<Alias> rows : patterns) {
            if (name.startsWith(rows.get(0).stem()) && name.length() > rows.get(0).stem().length()) {
                Optional<Alias> a = inForce(rows, at);
                if (a.isPresent()) {
                    return a;
                }
            }
        }
        return Optional.empty();
    }

    private static Optional<Alias> inForce(List<Alias> newestFirst, Instant at) {
        if (newestFirst != null) {
            for (Alias a : newestFirst) {
                if (!a.effectiveFrom().isAfter(at)) {
                    return Optional.of(a);
                }
            }
        }
        return Optional.empty();
    }

    public int size() {
        return exact.size() + patterns.size();
    }
}
