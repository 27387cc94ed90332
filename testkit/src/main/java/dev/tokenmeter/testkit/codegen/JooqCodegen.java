package dev.tokenmeter.testkit.codegen;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import org.flywaydb.core.Flyway;
import org.jooq.codegen.GenerationTool;
import org.jooq.meta.jaxb.Configuration;
import org.jooq.meta.jaxb.Database;
import org.jooq.meta.jaxb.Generate;
import org.jooq.meta.jaxb.Generator;
import org.jooq.meta.jaxb.Jdbc;
import org.jooq.meta.jaxb.Target;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

/**
 * Generates jOOQ classes from the Flyway migrations, against a real (embedded) Postgres.
 *
 * <p>The DDL uses Postgres features (declarative partitioning, plpgsql functions) that jOOQ's
 * DDL simulation does not model, so the migrations run on the engine they are written for and jOOQ
 * reads the resulting catalog. Generation is skipped when the migrations are unchanged since the
 * last run (a hash is kept beside the output), which keeps incremental builds fast.
 *
 * <p>Usage: {@code JooqCodegen <outputDir> <packageName> <migrationsDir>}
 */
public final class JooqCodegen {

    /** Monthly ledger partitions are an implementation detail of usage_ledger; only the parent is mapped. */
    static final String EXCLUDES = "usage_ledger_\\d{4}_\\d{2}|flyway_schema_history";

    private JooqCodegen() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            throw new IllegalArgumentException("usage: JooqCodegen <outputDir> <packageName> <migrationsDir>");
        }
        Path outputDir = Path.of(args[0]);
        String packageName = args[1];
        Path migrations = Path.of(args[2]).toAbsolutePath().normalize();

        String hash = hashOf(migrations);
        Path marker = outputDir.resolve(".migrations.sha256");
        if (Files.exists(marker) && Files.readString(marker).equals(hash)) {
            System.out.println("[jooq-codegen] migrations unchanged, keeping " + outputDir);
            return;
        }

        try (EmbeddedPostgres pg = EmbeddedPostgres.builder().start()) {
            String url = pg.getJdbcUrl("postgres", "postgres");
            Flyway.configure()
                    .dataSource(url, "postgres", "postgres")
                    .locations("filesystem:" + migrations)
                    .load()
                    .migrate();

            Configuration configuration = new Configuration()
                    .withJdbc(new Jdbc().withDriver("org.postgresql.Driver").withUrl(url)
                            .withUser("postgres").withPassword("postgres"))
                    .withGenerator(new Generator()
                            .withDatabase(new Database()
                                    .withName("org.jooq.meta.postgres.PostgresDatabase")
                                    .withInputSchema("public")
                                    .withExcludes(EXCLUDES))
                            .withGenerate(new Generate()
                                    .withRecords(true)
                                    .withPojos(false)
                                    .withJavaTimeTypes(true)
                                    .withGeneratedAnnotation(false))
                            .withTarget(new Target()
                                    .withPackageName(packageName)
                                    .withDirectory(outputDir.toString())
                                    .withClean(true)));
            GenerationTool.generate(configuration);
        }
        Files.writeString(marker, hash);
    }

    private static String hashOf(Path migrations) {
        try (Stream<Path> files = Files.list(migrations)) {
            List<Path> sorted = files.filter(p -> p.toString().endsWith(".sql")).sorted().toList();
            if (sorted.isEmpty()) {
                throw new IllegalStateException("no migrations found in " + migrations);
            }
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            for (Path file : sorted) {
                digest.update(file.getFileName().toString().getBytes(StandardCharsets.UTF_8));
                digest.update(Files.readAllBytes(file));
            }
            return HexFormat.of().formatHex(digest.digest());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
