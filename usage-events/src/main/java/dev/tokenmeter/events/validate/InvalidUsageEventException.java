package dev.tokenmeter.events.validate;

import java.util.List;

/** A usage event broke the contract's rules; {@link #problems()} says which, one message each. */
public final class InvalidUsageEventException extends IllegalArgumentException {

    private final List<String> problems;

    public InvalidUsageEventException(List<String> problems) {
        super("invalid usage event: " + String.join("; ", problems));
        this.problems = List.copyOf(problems);
    }

    public List<String> problems() {
        return problems;
    }
}
