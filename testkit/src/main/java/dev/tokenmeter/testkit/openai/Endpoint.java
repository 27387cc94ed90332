package dev.tokenmeter.testkit.openai;

/** The POST endpoints the fake serves, under {@code /v1}. */
enum Endpoint {
    CHAT_COMPLETIONS("/v1/chat/completions"),
    COMPLETIONS("/v1/completions"),
    EMBEDDINGS("/v1/embeddings"),
    RESPONSES("/v1/responses"),
    MODERATIONS("/v1/moderations"),
    IMAGES_GENERATIONS("/v1/images/generations"),
    AUDIO_SPEECH("/v1/audio/speech"),
    /** Multipart uploads ({@link FakeUploads}). */
    AUDIO_TRANSCRIPTIONS("/v1/audio/transcriptions"),
    AUDIO_TRANSLATIONS("/v1/audio/translations"),
    IMAGES_EDITS("/v1/images/edits");

    final String path;

    Endpoint(String path) {
        this.path = path;
    }

    /** Accepts {@code /v1/chat/completions}, {@code chat/completions}, a full URL ending in it, etc. */
    static Endpoint of(String endpoint) {
        String e = endpoint.trim();
        int q = e.indexOf('?');
        if (q >= 0) {
            e = e.substring(0, q);
        }
        while (e.endsWith("/")) {
            e = e.substring(0, e.length() - 1);
        }
        for (Endpoint candidate : values()) {
            String bare = candidate.path.substring("/v1".length());
            if (e.equals(candidate.path) || e.endsWith(candidate.path) || e.equals(bare) || e.equals(bare.substring(1))) {
                return candidate;
            }
        }
        throw new IllegalArgumentException("not an endpoint of the fake: " + endpoint);
    }

    boolean multipart() {
        return this == AUDIO_TRANSCRIPTIONS || this == AUDIO_TRANSLATIONS || this == IMAGES_EDITS;
    }

    /** For a request path; null when the path is not one of ours. */
    static Endpoint forPath(String path) {
        for (Endpoint candidate : values()) {
            if (candidate.path.equals(path)) {
                return candidate;
            }
        }
        return null;
    }
}
