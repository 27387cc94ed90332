package dev.tokenmeter.edge.proxy;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A {@code multipart/form-data} body (RFC 7578) as the edge reads it to bill an upload (ADR 0088): the text fields
 * by name and, of each file part, only its field name and size. The bytes themselves are never copied or kept: the
 * body goes upstream exactly as it came.
 *
 * <p>Everything the caller controls has a bound; a body outside them is an {@link IllegalArgumentException} whose
 * message names the problem without echoing the caller's bytes: a boundary of 1..70 characters, at most
 * {@value #MAX_PARTS} parts, part headers of at most {@value #MAX_PART_HEADER_BYTES} bytes, field names of
 * {@code [A-Za-z0-9_.\[\]]{1,64}}, text fields of at most {@value #MAX_TEXT_FIELD_BYTES} bytes of valid UTF-8, a
 * plain (not {@code name[]}) text field at most once, and the closing delimiter present.
 */
final class MultipartForm {

    static final int MAX_PARTS = 32;
    static final int MAX_PART_HEADER_BYTES = 4096;
    /** gpt-image-1's prompt may be 32,000 characters: up to 128,000 bytes of UTF-8. */
    static final int MAX_TEXT_FIELD_BYTES = 128 * 1024;
    private static final Pattern FIELD_NAME = Pattern.compile("[A-Za-z0-9_.\\[\\]]{1,64}");
    private static final byte[] CRLF = {'\r', '\n'};
    private static final byte[] HEADER_END = {'\r', '\n', '\r', '\n'};

    /** A file part: its field name, its content's length and where the content starts in the body. */
    record FilePart(String name, long bytes, int offset) {

        /** The part's content, copied out of {@code body} (the multipart body it was parsed from). */
        byte[] content(byte[] body) {
            return java.util.Arrays.copyOfRange(body, offset, offset + (int) bytes);
        }
    }

    /**
     * @param fields text fields by name; a {@code name[]} field keeps each value in order, any other name one value
     * @param files  the file parts (those with a {@code filename}) in order
     */
    record Form(Map<String, List<String>> fields, List<FilePart> files) {

        /** The one value of a text field, or null. */
        String field(String name) {
            List<String> values = fields.get(name);
            return values == null ? null : values.getFirst();
        }

        long fileBytes() {
            return files.stream().mapToLong(FilePart::bytes).sum();
        }

        long filesNamed(String... names) {
            return files.stream().filter(f -> List.of(names).contains(f.name())).count();
        }
    }

    private MultipartForm() {
    }

    /** The boundary of a {@code multipart/form-data} content type; else an {@link IllegalArgumentException}. */
    static String boundary(String contentType) {
        if (contentType == null) {
            throw new IllegalArgumentException("This endpoint takes multipart/form-data; the request has no Content-Type.");
        }
        String[] params = contentType.split(";");
        if (!params[0].trim().toLowerCase(Locale.ROOT).equals("multipart/form-data")) {
            throw new IllegalArgumentException("This endpoint takes multipart/form-data (a file upload), not the request's Content-Type.");
        }
        for (int i = 1; i < params.length; i++) {
            String p = params[i].trim();
            int eq = p.indexOf('=');
            if (eq > 0 && p.substring(0, eq).trim().equalsIgnoreCase("boundary")) {
                String b = unquote(p.substring(eq + 1).trim());
                if (b.isEmpty() || b.length() > 70 || !b.chars().allMatch(c -> c > 0x20 && c < 0x7f || c == ' ')) {
                    throw new IllegalArgumentException("The multipart boundary must be 1 to 70 printable ASCII characters.");
                }
                return b;
            }
        }
        throw new IllegalArgumentException("The multipart/form-data Content-Type has no boundary.");
    }

    static Form parse(byte[] body, String boundary) {
        byte[] delimiter = ("--" + boundary).getBytes(StandardCharsets.US_ASCII);
        byte[] innerDelimiter = ("\r\n--" + boundary).getBytes(StandardCharsets.US_ASCII);
        int at = startsWith(body, 0, delimiter) ? 0 : indexOf(body, innerDelimiter, 0, body.length);
        if (at < 0) {
            throw malformed("no part starts with the boundary");
        }
        at += startsWith(body, at, delimiter) ? delimiter.length : innerDelimiter.length;
        Map<String, List<String>> fields = new LinkedHashMap<>();
        List<FilePart> files = new ArrayList<>();
        int parts = 0;
        while (true) {
            if (startsWith(body, at, new byte[] {'-', '-'})) {
                if (parts == 0) {
                    throw malformed("it has no parts");
                }
                return new Form(fields, List.copyOf(files));
            }
            while (at < body.length && (body[at] == ' ' || body[at] == '\t')) {
                at++; // transport padding after a delimiter (RFC 2046)
            }
            if (!startsWith(body, at, CRLF)) {
                throw malformed("a delimiter is not followed by a line break");
            }
            at += 2;
            if (++parts > MAX_PARTS) {
                throw new IllegalArgumentException("A multipart body may have at most " + MAX_PARTS + " parts.");
            }
            int headerEnd = indexOf(body, HEADER_END, at - 2, Math.min(body.length, at + MAX_PART_HEADER_BYTES));
            if (headerEnd < 0) {
                throw malformed("a part's headers do not end within " + MAX_PART_HEADER_BYTES + " bytes");
            }
            String headers = new String(body, at, Math.max(0, headerEnd - at), StandardCharsets.ISO_8859_1);
            int contentStart = headerEnd + HEADER_END.length;
            int contentEnd = indexOf(body, innerDelimiter, contentStart - 2, body.length);
            if (contentEnd < 0) {
                throw malformed("a part is not closed by the boundary");
            }
            if (contentEnd < contentStart) {
                contentEnd = contentStart; // an empty part whose delimiter shares the header's last line break
            }
            Disposition d = disposition(headers);
            if (d.filename) {
                files.add(new FilePart(d.name, contentEnd - contentStart, contentStart));
            } else {
                if (contentEnd - contentStart > MAX_TEXT_FIELD_BYTES) {
                    throw new IllegalArgumentException(d.name + " must be at most " + MAX_TEXT_FIELD_BYTES + " bytes.");
                }
                List<String> values = fields.computeIfAbsent(d.name, k -> new ArrayList<>(1));
                if (!values.isEmpty() && !d.name.endsWith("[]")) {
                    throw new IllegalArgumentException(d.name + " is given more than once.");
                }
                values.add(utf8(body, contentStart, contentEnd - contentStart, d.name));
            }
            at = contentEnd + innerDelimiter.length;
        }
    }

    private record Disposition(String name, boolean filename) {
    }

    /** The part's {@code Content-Disposition: form-data; name="..."[; filename="..."]}. */
    private static Disposition disposition(String headers) {
        for (String line : headers.split("\r\n")) {
            int colon = line.indexOf(':');
            if (colon < 0 || !line.substring(0, colon).trim().equalsIgnoreCase("content-disposition")) {
                continue;
            }
            List<String> params = splitParams(line.substring(colon + 1));
            if (params.isEmpty() || !params.getFirst().trim().equalsIgnoreCase("form-data")) {
                throw malformed("a part is not form-data");
            }
            String name = null;
            boolean filename = false;
            for (String p : params.subList(1, params.size())) {
                int eq = p.indexOf('=');
                if (eq < 0) {
                    continue;
                }
                String key = p.substring(0, eq).trim().toLowerCase(Locale.ROOT);
                if (key.equals("name")) {
                    name = unquote(p.substring(eq + 1).trim());
                } else if (key.equals("filename") || key.equals("filename*")) {
                    filename = true;
                }
            }
            if (name == null || !FIELD_NAME.matcher(name).matches()) {
                throw new IllegalArgumentException("Each multipart field needs a name of 1 to 64 characters from"
                        + " [A-Za-z0-9_.[]].");
            }
            return new Disposition(name, filename);
        }
        throw malformed("a part has no Content-Disposition");
    }

    /** Splits on {@code ;} outside double quotes. */
    private static List<String> splitParams(String value) {
        List<String> out = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c == '"' && (i == 0 || value.charAt(i - 1) != '\\')) {
                quoted = !quoted;
            }
            if (c == ';' && !quoted) {
                out.add(current.toString());
                current.setLength(0);
            } else {
                current.append(c);
            }
        }
        out.add(current.toString());
        return out;
    }

    private static String unquote(String v) {
        return v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"") ? v.substring(1, v.length() - 1) : v;
    }

    private static String utf8(byte[] body, int offset, int length, String name) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(body, offset, length))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(name + " must be UTF-8 text.");
        }
    }

    private static IllegalArgumentException malformed(String why) {
        return new IllegalArgumentException("The multipart/form-data body is malformed: " + why + ".");
    }

    private static boolean startsWith(byte[] body, int at, byte[] prefix) {
        if (at < 0 || at + prefix.length > body.length) {
            return false;
        }
        for (int i = 0; i < prefix.length; i++) {
            if (body[at + i] != prefix[i]) {
                return false;
            }
        }
        return true;
    }

    /** The first index of {@code needle} in {@code body[from, to)}, or -1. */
    static int indexOf(byte[] body, byte[] needle, int from, int to) {
        byte first = needle[0];
        for (int i = Math.max(0, from), last = to - needle.length; i <= last; i++) {
            if (body[i] == first && startsWith(body, i, needle)) {
                return i;
            }
        }
        return -1;
    }
}
