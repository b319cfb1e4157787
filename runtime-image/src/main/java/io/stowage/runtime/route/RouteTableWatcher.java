package io.stowage.runtime.route;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.jboss.logging.Logger;

/**
 * Reloads the router's route table when the manifests it was read from change: in a cluster, the ConfigMap the
 * operator writes from the LlmRoutes, mounted as the router's {@code -f} directory (the kubelet swaps the files in
 * place). A table that does not read keeps the one before, with a warning, until the files change again.
 */
public final class RouteTableWatcher implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(RouteTableWatcher.class);

    private final Path dir;
    private final Callable<RouteTable> load;
    private final Consumer<RouteTable> apply;
    private final ScheduledExecutorService timer;
    private String fingerprint;

    /**
     * @param load reads the table from {@code dir} (throws what is wrong with it)
     * @param apply takes a table read after a change
     */
    public RouteTableWatcher(Path dir, Callable<RouteTable> load, Consumer<RouteTable> apply, Duration interval) {
        if (interval.isNegative() || interval.isZero()) {
            throw new IllegalArgumentException("the routes' reload interval must be > 0, got " + interval);
        }
        this.dir = dir;
        this.load = load;
        this.apply = apply;
        this.fingerprint = fingerprint(dir);
        this.timer = Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().name("stowage-routes-watch").daemon().factory());
        long ms = interval.toMillis();
        timer.scheduleWithFixedDelay(this::check, ms, ms, TimeUnit.MILLISECONDS);
    }

    /** Reads the table again when the files changed since the last look; returns whether it was replaced. */
    public synchronized boolean check() {
        String now = fingerprint(dir);
        if (now.equals(fingerprint)) {
            return false;
        }
        fingerprint = now;
        try {
            RouteTable t = load.call();
            apply.accept(t);
            LOG.infof(
                    "routes reloaded from %s: %s",
                    dir, t.routes().stream().map(RouteTable.Route::name).toList());
            return true;
        } catch (Exception e) {
            LOG.warnf("routes in %s changed but do not read (%s); serving the routes from before", dir, e.getMessage());
            return false;
        }
    }

    /** SHA-256 over the names and contents of the directory's YAML files (or of the file itself), in name order. */
    static String fingerprint(Path dir) {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        List<Path> files;
        if (Files.isDirectory(dir)) {
            try (Stream<Path> s = Files.list(dir)) {
                files = s.filter(p -> {
                            String n = p.getFileName().toString();
                            return !n.startsWith(".") && (n.endsWith(".yaml") || n.endsWith(".yml"));
                        })
                        .sorted()
                        .toList();
            } catch (IOException e) {
                return "unreadable: " + e.getMessage();
            }
        } else {
            files = List.of(dir);
        }
        for (Path f : files) {
            sha.update(f.getFileName().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            try {
                sha.update(Files.readAllBytes(f));
            } catch (IOException e) {
                sha.update(("unreadable " + e.getMessage()).getBytes(java.nio.charset.StandardCharsets.UTF_8));
            }
        }
        return HexFormat.of().formatHex(sha.digest());
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
