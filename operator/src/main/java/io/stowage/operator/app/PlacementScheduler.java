package io.stowage.operator.app;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.quarkus.runtime.ShutdownEvent;
import io.stowage.operator.reconcile.PlacementLoop;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * Runs the cluster-wide placement loop on one thread: coalesces the triggers of many reconciles and watched
 * changes into one batch pass, and resyncs periodically once this replica leads (reconciles only reach the leader).
 */
@ApplicationScoped
public class PlacementScheduler {
    private static final Logger LOG = Logger.getLogger(PlacementScheduler.class);
    /** A GitOps sync creates many objects at once: wait this long so that one pass batches them. */
    private static final long DEBOUNCE_MILLIS = 200;
    /** While a host loads a model, look again this soon: its readiness changes without a Kubernetes event. */
    private static final long SETTLING_MILLIS = 2000;

    private final PlacementLoop loop;
    private final StowageSettings settings;
    private final ScheduledExecutorService executor = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "stowage-placement");
        t.setDaemon(true);
        return t;
    });
    private final AtomicBoolean queued = new AtomicBoolean();
    private final AtomicBoolean started = new AtomicBoolean();
    /** Whether a poll of the scaling hosts is scheduled (one chain at a time). */
    private final AtomicBoolean polling = new AtomicBoolean();

    private final Timer passTimer;
    private final AtomicLong pending = new AtomicLong();
    private final AtomicLong devices = new AtomicLong();
    private final Map<String, AtomicLong> planned = new ConcurrentHashMap<>();
    private final Map<String, AtomicLong> reported = new ConcurrentHashMap<>();
    private final MeterRegistry registry;

    PlacementScheduler(PlacementLoop loop, StowageSettings settings, MeterRegistry registry, ChangeSignal changes) {
        this.loop = loop;
        changes.connect(this::onClusterChange);
        this.settings = settings;
        this.registry = registry;
        this.passTimer = Timer.builder("stowage.placement.pass")
                .description("time of one placement pass")
                .register(registry);
        registry.gauge("stowage.replicas.pending", pending);
        registry.gauge("stowage.devices", devices);
    }

    /** Asks for a pass soon; many requests before it runs give one pass. */
    public void requestPass() {
        if (started.compareAndSet(false, true)) {
            long every = settings.resyncInterval().toMillis();
            executor.scheduleWithFixedDelay(this::runSafely, every, every, TimeUnit.MILLISECONDS);
        }
        if (queued.compareAndSet(false, true)) {
            executor.schedule(this::runSafely, DEBOUNCE_MILLIS, TimeUnit.MILLISECONDS);
        }
    }

    /**
     * A watched change (a pod, a node, a deployment): a debounced pass, once this replica leads. Before the first
     * reconcile reaches it, it may be a standby whose caches are warm but which must not write.
     */
    void onClusterChange() {
        if (started.get()) {
            requestPass();
        }
    }

    private void runSafely() {
        queued.set(false);
        try {
            PlacementLoop.PassResult r = passTimer.recordCallable(loop::runPass);
            if (r.settling() && queued.compareAndSet(false, true)) {
                executor.schedule(this::runSafely, SETTLING_MILLIS, TimeUnit.MILLISECONDS);
            }
            if (r.scaling() && polling.compareAndSet(false, true)) {
                schedulePoll();
            }
            pending.set(r.pendingReplicas());
            devices.set(r.devices());
            r.plannedBytesByDevice()
                    .forEach((d, b) ->
                            gauge(planned, "stowage.device.planned.bytes", d).set(b));
            r.reportedBytesByDevice()
                    .forEach((d, b) ->
                            gauge(reported, "stowage.device.reported.bytes", d).set(b));
        } catch (Exception e) {
            // The next trigger or resync retries; one failed pass must not stop the loop.
            LOG.errorf(e, "placement pass failed: %s", e.getMessage());
        }
    }

    private void schedulePoll() {
        executor.schedule(this::pollSafely, settings.scalingPollInterval().toMillis(), TimeUnit.MILLISECONDS);
    }

    /**
     * Reads the scaling hosts' state: a change (a deployment idle, a request held for a dormant one) asks for a
     * pass, which polls again if scaling remains; otherwise polls again after the interval.
     */
    private void pollSafely() {
        if (!loop.hasScalingHosts()) {
            polling.set(false); // the next pass that finds one starts polling again
            return;
        }
        boolean changed = false;
        try {
            changed = loop.pollScaling();
        } catch (Exception e) {
            LOG.debugf(e, "scaling poll failed: %s", e.getMessage());
        }
        if (changed) {
            polling.set(false);
            requestPass();
        } else {
            schedulePoll();
        }
    }

    private AtomicLong gauge(Map<String, AtomicLong> map, String name, String device) {
        return map.computeIfAbsent(
                device,
                d -> registry.gauge(name, io.micrometer.core.instrument.Tags.of("device", d), new AtomicLong()));
    }

    void onStop(@Observes ShutdownEvent ev) {
        executor.shutdownNow();
        loop.close();
    }
}
