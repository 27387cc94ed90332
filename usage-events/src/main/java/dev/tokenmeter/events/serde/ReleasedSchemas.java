package dev.tokenmeter.events.serde;

import org.apache.avro.Schema;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Every released version of each Avro schema, as kept in the {@code schemas} module under
 * {@code avro/released/<Name>/v<N>.avsc} and listed in {@code avro/released/index.txt}.
 * Released files are fully resolved (no references to other files), so each parses on its own.
 */
public final class ReleasedSchemas {

    static final String INDEX = "avro/released/index.txt";
    private static final Map<String, List<Schema>> CACHE = new ConcurrentHashMap<>();

    private ReleasedSchemas() {
    }

    /** Released versions of the record with this full name, oldest first; empty if none was released. */
    public static List<Schema> versionsOf(String fullName) {
        return CACHE.computeIfAbsent(fullName, ReleasedSchemas::load);
    }

    /** Paths (relative to avro/released/) listed in the index, in file order. */
    public static List<String> index() {
        List<String> entries = new ArrayList<>();
        try (InputStream in = resource(INDEX);
             BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            for (String line; (line = reader.readLine()) != null; ) {
                line = line.strip();
                if (!line.isEmpty() && !line.startsWith("#")) {
                    entries.add(line);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return entries;
    }

    public static Schema parse(String entry) {
        try (InputStream in = resource("avro/released/" + entry)) {
            return new Schema.Parser().parse(in);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read released schema " + entry, e);
        }
    }

    private static List<Schema> load(String fullName) {
        List<Schema> versions = new ArrayList<>();
        for (String entry : index()) {
            Schema schema = parse(entry);
            if (schema.getFullName().equals(fullName)) {
                versions.add(schema);
            }
        }
        return List.copyOf(versions);
    }

    private static InputStream resource(String path) {
        InputStream in = ReleasedSchemas.class.getClassLoader().getResourceAsStream(path);
        if (in == null) {
            throw new IllegalStateException(path + " not on the classpath; is the schemas module a dependency?");
        }
        return in;
    }
}
