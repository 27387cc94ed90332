package dev.tokenmeter.testkit.openai;

import java.util.concurrent.CountDownLatch;

/**
 * Runs the fake OpenAI upstream on its own for the demo and docker-compose.
 *
 * <p>Port: first argument, else env {@code FAKE_OPENAI_PORT}, else 0 (a free port). Binds 127.0.0.1 only.
 * Prints the base URL on stdout and runs until killed.
 */
public final class FakeOpenAiMain {

    private FakeOpenAiMain() {
    }

    public static void main(String[] args) throws InterruptedException {
        String raw = args.length > 0 ? args[0] : System.getenv().getOrDefault("FAKE_OPENAI_PORT", "0");
        int port;
        try {
            port = Integer.parseInt(raw.trim());
        } catch (NumberFormatException e) {
            System.err.println("FAKE_OPENAI_PORT must be a port number 0..65535, was '" + raw + "'");
            System.exit(2);
            return;
        }
        FakeOpenAi fake = FakeOpenAi.builder().port(port).build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            fake.close();
            stopped.countDown();
        }, "fake-openai-shutdown"));
        System.out.println(fake.baseUrl());
        System.out.flush();
        stopped.await();
    }
}
