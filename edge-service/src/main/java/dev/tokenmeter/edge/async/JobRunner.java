package dev.tokenmeter.edge.async;

/** Runs one job through the metered call path (the proxy's {@code runJob}); {@link AsyncWorkers} calls it. */
@FunctionalInterface
public interface JobRunner {

    /**
     * @param attemptsBefore upstream attempts an earlier worker made (a claimed job goes on counting)
     * @param attemptStarted called before each upstream attempt, to record it
     */
    JobResult run(AsyncJob job, int attemptsBefore, Runnable attemptStarted);
}
