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

    /**
     * UsageEvent v4 (ADR 0078) against every earlier version, with data: an event written by v1..v3 reads as no
     * project and no labels; a v4 event with both reads under v1..v3 (the new fields skipped, the rest intact).
     */
    @Test
    void usageEventV4ReadsAndIsReadByEveryEarlierVersion() throws IOException {
        List<Schema> versions = releasedByName().get("dev.tokenmeter.events.UsageEvent");
        assertThat(versions).as("v1..v4 released").hasSizeGreaterThanOrEqualTo(4);
        Schema v4 = versions.get(3);
        for (int i = 0; i < 3; i++) {
            Schema older = versions.get(i);
            org.apache.avro.generic.GenericRecord old = minimal(older);
            org.apache.avro.generic.GenericRecord asV4 = roundTrip(old, older, v4);
            assertThat(asV4.get("project")).as("v" + (i + 1) + " -> v4 project").isNull();
            assertThat((Map<?, ?>) asV4.get("labels")).as("v" + (i + 1) + " -> v4 labels").isEmpty();
            assertThat(asV4.get("costNanoUsd")).isEqualTo(12_345L);

            org.apache.avro.generic.GenericRecord labelled = minimal(v4);
            labelled.put("project", "support-bot");
            labelled.put("labels", Map.of("feature", "chat", "customer", "acme"));
            org.apache.avro.generic.GenericRecord asOld = roundTrip(labelled, v4, older);
            assertThat(asOld.getSchema().getField("labels")).as("v" + (i + 1) + " has no labels").isNull();
            assertThat(asOld.get("costNanoUsd")).isEqualTo(12_345L);
            assertThat(asOld.get("userId").toString()).isEqualTo("bob");
        }
        org.apache.avro.generic.GenericRecord labelled = minimal(v4);
        labelled.put("project", "support-bot");
        labelled.put("labels", Map.of("feature", "chat"));
        org.apache.avro.generic.GenericRecord same = roundTrip(labelled, v4, v4);
        assertThat(same.get("project").toString()).isEqualTo("support-bot");
        assertThat(((Map<?, ?>) same.get("labels")).toString()).isEqualTo("{feature=chat}");
    }

    private static org.apache.avro.generic.GenericRecord minimal(Schema schema) {
        org.apache.avro.generic.GenericRecord r = new org.apache.avro.generic.GenericData.Record(schema);
        for (Schema.Field f : schema.getFields()) {
            if (f.hasDefaultValue()) {
                r.put(f.name(), org.apache.avro.generic.GenericData.get().getDefaultValue(f));
            }
        }
        r.put("eventId", "6f1c2b1e-0000-4000-8000-000000000001");
        r.put("occurredAt", 1_700_000_000_000L);
        r.put("receivedAt", 1_700_000_000_500L);
        r.put("tenantId", "acme");
        r.put("userId", "bob");
        r.put("model", "gpt-4o-mini");
        r.put("endpoint", "/v1/chat/completions");
        r.put("costNanoUsd", 12_345L);
        return r;
    }

    private static org.apache.avro.generic.GenericRecord roundTrip(org.apache.avro.generic.GenericRecord record,
                                                                   Schema writer, Schema reader) throws IOException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        org.apache.avro.io.BinaryEncoder enc = org.apache.avro.io.EncoderFactory.get().binaryEncoder(out, null);
        new org.apache.avro.generic.GenericDatumWriter<org.apache.avro.generic.GenericRecord>(writer).write(record, enc);
        enc.flush();
        return new org.apache.avro.generic.GenericDatumReader<org.apache.avro.generic.GenericRecord>(writer, reader)
                .read(null, org.apache.avro.io.DecoderFactory.get().binaryDecoder(out.toByteArray(), null));
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
