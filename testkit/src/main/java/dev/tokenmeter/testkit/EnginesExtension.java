package dev.tokenmeter.testkit;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.jupiter.api.extension.ParameterResolver;

import java.util.Set;

/**
 * JUnit 5: {@code @ExtendWith(EnginesExtension.class)} resolves {@link Engines}, {@link KafkaEngine},
 * {@link RedisEngine} and {@link PostgresEngine} parameters (constructor, lifecycle and test methods) from
 * {@link Engines#shared()}. Only the engines a test asks for are started.
 */
public final class EnginesExtension implements ParameterResolver {

    private static final Set<Class<?>> RESOLVED =
            Set.of(Engines.class, KafkaEngine.class, RedisEngine.class, PostgresEngine.class);

    @Override
    public boolean supportsParameter(ParameterContext parameterContext, ExtensionContext extensionContext) {
        return RESOLVED.contains(parameterContext.getParameter().getType());
    }

    @Override
    public Object resolveParameter(ParameterContext parameterContext, ExtensionContext extensionContext) {
        Class<?> type = parameterContext.getParameter().getType();
        Engines engines = Engines.shared();
        try {
            if (type == Engines.class) {
                return engines;
            } else if (type == KafkaEngine.class) {
                return engines.kafka();
            } else if (type == RedisEngine.class) {
                return engines.redis();
            } else if (type == PostgresEngine.class) {
                return engines.postgres();
            }
        } catch (RuntimeException e) {
            throw new ParameterResolutionException("could not start the " + type.getSimpleName() + " for "
                    + extensionContext.getDisplayName() + " (backend " + engines.backend() + "): " + e.getMessage(), e);
        }
        throw new ParameterResolutionException("EnginesExtension cannot resolve " + type.getName());
    }
}
