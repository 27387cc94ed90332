package dev.tokenmeter.edge.proxy;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** ADR 0088: what the edge reads of a multipart upload, and the bounds that refuse one. */
class MultipartFormTest {

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    @Test
    void readsTextFieldsAndFileSizes_withAPreambleAndBinaryContent() {
        String body = "preamble\r\n--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
                + "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a;b.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n"
                + "\u00ff\u0000\r\n-\r\n--c\r\n--b\r\nContent-Disposition: form-data; name=\"include[]\"\r\n\r\nlogprobs\r\n"
                + "--b\r\nContent-Disposition: form-data; name=\"include[]\"\r\n\r\n\r\n--b--\r\n";
        MultipartForm.Form form = MultipartForm.parse(bytes(body), "b");
        assertThat(form.field("model")).isEqualTo("whisper-1");
        assertThat(form.files()).singleElement().satisfies(f -> {
            assertThat(f.name()).isEqualTo("file");
            assertThat(f.bytes()).isEqualTo(10);
            assertThat(f.content(bytes(body))).isEqualTo(bytes("\u00ff\u0000\r\n-\r\n--c"));
        });
        assertThat(form.fields().get("include[]")).containsExactly("logprobs", "");
    }

    @Test
    void boundaryComesFromAMultipartContentTypeOnly() {
        assertThat(MultipartForm.boundary("multipart/form-data; boundary=\"x y\"")).isEqualTo("x y");
        assertThatThrownBy(() -> MultipartForm.boundary("application/json")).hasMessageContaining("multipart/form-data");
        assertThatThrownBy(() -> MultipartForm.boundary("multipart/form-data")).hasMessageContaining("no boundary");
        assertThatThrownBy(() -> MultipartForm.boundary("multipart/form-data; boundary=" + "x".repeat(71)))
                .hasMessageContaining("1 to 70");
    }

    @Test
    void refusesWhatIsOutOfBounds_withoutEchoingIt() {
        String part = "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nsecret-model\r\n";
        for (String bad : List.of(part, part + "--b\r\n", "--b--\r\n", "nothing here",
                part + "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nagain\r\n--b--",
                "--b\r\nContent-Disposition: form-data; name=\"bad name\"\r\n\r\nv\r\n--b--",
                "--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--",
                "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\u00ff\r\n--b--",
                "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n" + "X: y\r\n".repeat(1000) + "\r\nv\r\n--b--",
                part.repeat(1).replace("model", "f[]").repeat(MultipartForm.MAX_PARTS + 1) + "--b--",
                "--b\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\n" + "x".repeat(MultipartForm.MAX_TEXT_FIELD_BYTES + 1) + "\r\n--b--")) {
            assertThatThrownBy(() -> MultipartForm.parse(bytes(bad), "b"), bad.length() > 80 ? bad.substring(0, 80) : bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .satisfies(e -> assertThat(e.getMessage()).doesNotContain("secret-model"));
        }
    }
}
