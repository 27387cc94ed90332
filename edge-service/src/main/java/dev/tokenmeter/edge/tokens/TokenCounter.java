package dev.tokenmeter.edge.tokens;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingRegistry;
import com.knuddels.jtokkit.api.EncodingType;

import java.util.Locale;

/**
 * Counts tokens locally with jtokkit, for quota estimates and for billing a stream whose usage chunk never came.
 *
 * <p>Encoding per model family, as OpenAI's tiktoken maps them: {@code o200k_base} for the gpt-4o, gpt-4.1,
 * gpt-4.5, gpt-5, chatgpt-4o families and the o-series reasoning models (o1, o3, o4-...); {@code cl100k_base} for
 * everything else (gpt-4, gpt-3.5, text-embedding-3-*). Special tokens are counted as plain text
 * ({@code countTokensOrdinary}), since a user's prompt that contains {@code <|endoftext|>} is text to OpenAI too.
 */
public final class TokenCounter {

    private final Encoding o200k;
    private final Encoding cl100k;

    public TokenCounter() {
        EncodingRegistry registry = Encodings.newLazyEncodingRegistry();
        this.o200k = registry.getEncoding(EncodingType.O200K_BASE);
        this.cl100k = registry.getEncoding(EncodingType.CL100K_BASE);
    }

    /** Loads both encodings now, so the first request does not pay for it. */
    public TokenCounter warm() {
        o200k.countTokensOrdinary("warm");
        cl100k.countTokensOrdinary("warm");
        return this;
    }

    public int count(String model, String text) {
        if (text == null || text.isEmpty()) {
            return 0;
        }
        return encodingFor(model).countTokensOrdinary(text);
    }

    /** The encoding's name for {@code model}: {@code o200k_base} or {@code cl100k_base}. */
    public static String encodingName(String model) {
        return usesO200k(model) ? "o200k_base" : "cl100k_base";
    }

    Encoding encodingFor(String model) {
        return usesO200k(model) ? o200k : cl100k;
    }

    static boolean usesO200k(String model) {
        if (model == null) {
            return false;
        }
        String m = model.toLowerCase(Locale.ROOT);
        int slash = m.lastIndexOf('/');
        if (slash >= 0) {
            m = m.substring(slash + 1);
        }
        if (m.startsWith("ft:")) {
            m = m.substring(3);
        }
        return m.startsWith("gpt-4o") || m.startsWith("gpt-4.1") || m.startsWith("gpt-4.5") || m.startsWith("gpt-5")
                || m.startsWith("chatgpt-4o") || m.startsWith("o1") || m.startsWith("o3") || m.startsWith("o4")
                || m.startsWith("gpt-oss");
    }
}
