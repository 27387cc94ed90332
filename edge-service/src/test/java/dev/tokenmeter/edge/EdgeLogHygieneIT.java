package dev.tokenmeter.edge;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.read.ListAppender;
import dev.tokenmeter.edge.EdgeTestBed.User;
import dev.tokenmeter.events.money.Money;
import dev.tokenmeter.testkit.Engines;
import dev.tokenmeter.testkit.EnginesExtension;
import dev.tokenmeter.testkit.openai.Behavior;
import dev.tokenmeter.testkit.openai.FakeOpenAi;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** Issue 4: logs never contain a service key, the provider key or prompt text, on any path. */
@ExtendWith(EnginesExtension.class)
class EdgeLogHygieneIT {

    @Test
    void noKeyAndNoPromptTextInAnyLogLine(Engines engines) throws Exception {
        LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
        Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
        Logger ours = context.getLogger("dev.tokenmeter");
        Level oursBefore = ours.getLevel();
        ours.setLevel(Level.DEBUG);
        ListAppender<ILoggingEvent> appender = new ListAppender<>();
        appender.setContext(context);
        appender.start();
        root.addAppender(appender);
        String prompt = "my secret prompt about the quarterly numbers 4711";
        try (FakeOpenAi openAi = FakeOpenAi.start();
             EdgeTestBed bed = new EdgeTestBed(engines, openAi, Map.of("UPSTREAM_REQUEST_TIMEOUT", "1s"))) {
            User user = bed.newUser(Money.usd(5));
            User broke = bed.newUser(1);
            bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", prompt));
            bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chatStream("gpt-4o-mini", prompt + " [[fake:cut-after=2]]"));
            openAi.enqueue(Behavior.status(503));
            bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", prompt));
            openAi.enqueue(Behavior.hang(Duration.ofSeconds(3)));
            bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("gpt-4o-mini", prompt));
            bed.post("/v1/chat/completions", user.key(), "{\"model\":\"gpt-4o-mini\",\"messages\":\"" + prompt);
            bed.post("/v1/chat/completions", user.key(), EdgeTestBed.chat("no-such-model", prompt));
            bed.post("/v1/chat/completions", broke.key(), EdgeTestBed.chat("gpt-4o-mini", prompt));
            bed.post("/v1/chat/completions", user.key().substring(0, 20) + "wrongwrongwrongwrongwrongwrong", EdgeTestBed.chat("gpt-4o-mini", prompt));
            bed.awaitEvents(user.userId(), 6, Duration.ofSeconds(20));

            List<String> lines = appender.list.stream().map(e -> e.getFormattedMessage()
                    + (e.getThrowableProxy() == null ? "" : ThrowableProxyUtil.asString(e.getThrowableProxy()))).toList();
            // The capture works: the failure lines of the edge are there.
            assertThat(lines).anyMatch(l -> l.contains("outcome=FAILED") && l.contains(user.userId()));
            assertThat(lines).anyMatch(l -> l.contains("outcome=REJECTED"));
            assertThat(lines).noneMatch(l -> l.contains(user.key()) || l.contains(broke.key()))
                    .noneMatch(l -> l.contains(user.key().substring(16)))
                    .noneMatch(l -> l.contains(EdgeTestBed.SERVICE_KEY))
                    .noneMatch(l -> l.contains("quarterly numbers"));
        } finally {
            root.detachAppender(appender);
            ours.setLevel(oursBefore);
        }
    }
}
