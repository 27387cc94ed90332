package dev.tokenmeter.edge.call;

import dev.tokenmeter.edge.publish.EventSink;
import dev.tokenmeter.events.UsageEvent;

import java.util.ArrayList;
import java.util.List;

/** An {@link EventSink} in a list; {@link #full} makes it refuse as a full spool does. */
public final class InMemorySink implements EventSink {

    private final List<String> timeline;
    public final List<UsageEvent> events = new ArrayList<>();
    public boolean full;

    public InMemorySink(List<String> timeline) {
        this.timeline = timeline;
    }

    @Override
    public void submit(UsageEvent event) throws SpoolFullException {
        if (full) {
            throw new SpoolFullException("spool full (test)");
        }
        timeline.add("event");
        events.add(event);
    }

    @Override
    public boolean isReady() {
        return true;
    }

    @Override
    public long pendingEvents() {
        return events.size();
    }

    @Override
    public void close() {
    }
}
