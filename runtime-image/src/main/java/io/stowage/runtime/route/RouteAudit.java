package io.stowage.runtime.route;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/** The last routing decisions, oldest dropped first: a bounded in-memory audit log. */
public final class RouteAudit {
    public static final int DEFAULT_CAPACITY = 1000;

    private final int capacity;
    private final ArrayDeque<RouteDecision> entries = new ArrayDeque<>();
    private long dropped;

    public RouteAudit(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("the route audit log's capacity must be at least 1, got " + capacity);
        }
        this.capacity = capacity;
    }

    public synchronized void record(RouteDecision d) {
        if (entries.size() == capacity) {
            entries.removeFirst();
            dropped++;
        }
        entries.addLast(d);
    }

    /**
     * The newest decisions, oldest first.
     *
     * @param route only this route's, or all when null
     * @param limit at most this many
     */
    public synchronized List<RouteDecision> recent(String route, int limit) {
        List<RouteDecision> out = new ArrayList<>();
        var it = entries.descendingIterator();
        while (it.hasNext() && out.size() < limit) {
            RouteDecision d = it.next();
            if (route == null || route.equals(d.route())) {
                out.add(d);
            }
        }
        return out.reversed();
    }

    public int capacity() {
        return capacity;
    }

    /** How many decisions were dropped to keep the log bounded. */
    public synchronized long dropped() {
        return dropped;
    }
}
