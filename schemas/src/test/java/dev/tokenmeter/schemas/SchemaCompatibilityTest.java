package dev.tokenmeter.schemas;

import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityType;
import org.apache.avro.SchemaNormalization;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The build-time guard on the event contract: every released version of every schema must be
 * backward compatible (a new reader reads old data) and forward compatible (an old reader reads new
 * data) with every earlier version, and the schema code is generated from must be the newest released
 * version. A breaking change to an .avsc therefore fails {@code ./mvnw verify}.
 */
class SchemaCompatibilityTest {

    static final Path AVRO = Path.of("src/main/avro");
    static final Path RELEASED = AVRO.resolve("released");
    static final Path CURRENT = AVRO.resolve("current");

    @Test
    void indexListsExactlyTheReleasedFiles() throws IOException {
        List<String> index = index();
        TreeSet<String> onDisk = new TreeSet<>();
        try (Stream<Path> files = Files.walk(RELEASED)) {
            files.filter(p -> p.toString().endsWith(".avsc"))
                    .forEach(p -> onDisk.add(RELEASED.relativize(p).toString().replace('\\', '/')));
        }
        assertThat(new TreeSet<>(index)).as("avro/released/index.txt vs files on disk").isEqualTo(onDisk);
    }

    @TestFactory
    Stream<DynamicTest> everyReleasedVersionIsMutuallyCompatibleWithEveryEarlierOne() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        for (Map.Entry<String, List<Schema>> e : releasedByName().entrySet()) {
            List<Schema> versions = e.getValue();
            for (int newer = 1; newer < versions.size(); newer++) {
                for (int older = 0; older < newer; older++) {
                    Schema o = versions.get(older);
                    Schema n = versions.get(newer);
                    String name = e.getKey() + " v" + (newer + 1) + " <-> v" + (older + 1);
                    tests.add(DynamicTest.dynamicTest(name, () -> assertMutuallyCompatible(n, o, name)));
                }
            }
        }
        return tests.stream();
    }

    @TestFactory
    Stream<DynamicTest> currentSchemaIsTheNewestReleasedVersion() throws IOException {
        Map<String, Schema> current = currentByName();
        Map<String, List<Schema>> released = releasedByName();
        assertThat(released.keySet()).as("every current schema has released versions").containsAll(current.keySet());
        return current.entrySet().stream().map(e -> DynamicTest.dynamicTest(e.getKey(), () -> {
            List<Schema> versions = released.get(e.getKey());
            Schema newest = versions.get(versions.size() - 1);
            assertThat(SchemaNormalization.toParsingForm(e.getValue()))
                    .as(e.getKey() + ": schemas/src/main/avro/current differs from the newest released version;"
                            + " release the change as the next vN.avsc (and list it in index.txt)")
                    .isEqualTo(SchemaNormalization.toParsingForm(newest));
            assertThat(e.getValue().getFields().stream().map(Schema.Field::name).toList())
                    .isEqualTo(newest.getFields().stream().map(Schema.Field::name).toList());
        }));
    }

    /** The check above must be able to fail: a known-breaking edit is reported as incompatible. */
    @Test
    void theCheckRejectsABreakingChange() throws IOException {
        Schema v1 = releasedByName().get("dev.tokenmeter.events.UsageEvent").get(0);
        Schema requiredFieldAdded = parse(Path.of("src/test/resources/breaking/UsageEvent-required-field.avsc"));
        Schema costAsString = parse(Path.of("src/test/resources/breaking/UsageEvent-cost-as-string.avsc"));

        assertThat(compatibility(requiredFieldAdded, v1)).as("new reader, old writer").isEqualTo(SchemaCompatibilityType.INCOMPATIBLE);
        assertThat(compatibility(v1, requiredFieldAdded)).as("old reader, new writer: extra fields are skipped")
                .isEqualTo(SchemaCompatibilityType.COMPATIBLE);
        assertThat(compatibility(costAsString, v1)).as("money field changed type, new reader")
                .isEqualTo(SchemaCompatibilityType.INCOMPATIBLE);
        assertThat(compatibility(v1, costAsString)).as("money field changed type, old reader")
                .isEqualTo(SchemaCompatibilityType.INCOMPATIBLE);
    }

    static void assertMutuallyCompatible(Schema newer, Schema older, String name) {
        assertThat(compatibility(newer, older)).as(name + ": backward (new reader, old writer)")
                .isEqualTo(SchemaCompatibilityType.COMPATIBLE);
        assertThat(compatibility(older, newer)).as(name + ": forward (old reader, new writer)")
                .isEqualTo(SchemaCompatibilityType.COMPATIBLE);
    }

    static SchemaCompatibilityType compatibility(Schema reader, Schema writer) {
        return SchemaCompatibility.checkReaderWriterCompatibility(reader, writer).getType();
    }

    static List<String> index() throws IOException {
        return Files.readAllLines(RELEASED.resolve("index.txt")).stream()
                .map(String::strip)
                .filter(l -> !l.isEmpty() && !l.startsWith("#"))
                .toList();
    }

    static Map<String, List<Schema>> releasedByName() throws IOException {
        Map<String, List<Schema>> byName = new LinkedHashMap<>();
        for (String entry : index()) {
            Schema schema = parse(RELEASED.resolve(entry));
            byName.computeIfAbsent(schema.getFullName(), k -> new ArrayList<>()).add(schema);
        }
        return byName;
    }

    /** The current schemas, parsed the way the code generator sees them (UsageEvent first: it defines the shared enums). */
    static Map<String, Schema> currentByName() throws IOException {
        Schema.Parser parser = new Schema.Parser();
        Map<String, Schema> byName = new LinkedHashMap<>();
        List<Path> files;
        try (Stream<Path> s = Files.list(CURRENT)) {
            files = s.filter(p -> p.toString().endsWith(".avsc"))
                    .sorted((a, b) -> a.endsWith("UsageEvent.avsc") ? -1 : b.endsWith("UsageEvent.avsc") ? 1 : a.compareTo(b))
                    .toList();
        }
        for (Path file : files) {
            Schema schema = parser.parse(file.toFile());
            byName.put(schema.getFullName(), schema);
        }
        return byName;
    }

    static Schema parse(Path file) throws IOException {
        return new Schema.Parser().parse(file.toFile());
    }
}
