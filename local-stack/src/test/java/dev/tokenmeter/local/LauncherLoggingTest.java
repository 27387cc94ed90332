package dev.tokenmeter.local;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.joran.JoranConfigurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.util.LogbackMDCAdapter;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.ConsoleAppender;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Issue 13: ./run-pipeline's console is its own summary only; what libraries and engines log (Flyway's migration
 * output, embedded Postgres' initdb, testkit) goes to the log folder, and Logback prints no status lines.
 */
class LauncherLoggingTest {

    @Test
    void librariesLogToTheLogFolderAndNothingToTheConsole(@TempDir Path logs) throws Exception {
        LoggerContext context = new LoggerContext();
        context.setMDCAdapter(new LogbackMDCAdapter()); // what SLF4J's binding sets on the real context
        context.putProperty("local-stack.logs", logs.toString());
        JoranConfigurator configurator = new JoranConfigurator();
        configurator.setContext(context);
        configurator.doConfigure(getClass().getClassLoader().getResource("logback-local-stack.xml"));

        context.getLogger("org.flywaydb.core.internal.command.DbMigrate").info("| ensure_usage_ledger_partitions |");
        context.getLogger("io.zonky.test.db.postgres.embedded.EmbeddedPostgres").info("initdb: The files belonging to");
        List<Appender<ILoggingEvent>> appenders = new ArrayList<>();
        for (Logger logger : context.getLoggerList()) {
            for (Iterator<Appender<ILoggingEvent>> it = logger.iteratorForAppenders(); it.hasNext(); ) {
                appenders.add(it.next());
            }
        }
        var statusListeners = context.getStatusManager().getCopyOfStatusListenerList();
        context.stop();

        assertThat(Files.readString(logs.resolve("local-stack.log")))
                .contains("ensure_usage_ledger_partitions", "initdb: The files belonging to");
        assertThat(appenders).isNotEmpty().noneMatch(a -> a instanceof ConsoleAppender);
        assertThat(statusListeners).as("Logback's status lines are silenced")
                .anyMatch(l -> l instanceof ch.qos.logback.core.status.NopStatusListener);
    }

    @Test
    void runPipelineStartsTheLauncherWithThatConfiguration() throws Exception {
        String script = Files.readString(Path.of("..", "run-pipeline"));

        assertThat(script).contains("-Dlogback.configurationFile=logback-local-stack.xml");
    }
}
