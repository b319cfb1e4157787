package io.stowage.e2e;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.stowage.hostapi.HostApi;
import io.stowage.operator.reconcile.Labels;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A fake kubelet for the mock API server that runs pods as real local processes of the runtime image's
 * {@code quarkus-run.jar}: a host pod becomes {@code java -jar quarkus-run.jar <its args>} with its environment (the
 * files of its Secret volumes, such as the admin token, written out; the model cache volume mapped to a directory), on
 * loopback ports; a probe pod runs its
 * {@code inspect} and its output file becomes the container's termination message.
 */
final class ProcessKubelet implements AutoCloseable {
    /**
     * A host pod's process and the loopback ports that stand in for its pod IP's 8080 and 8081; {@code tls} when the
     * pod mounts its namespace's admin certificate.
     */
    record HostProcess(String pod, Process process, int apiPort, int adminPort, Path log, boolean tls) {
        URI api() {
            return URI.create("http://127.0.0.1:" + apiPort);
        }

        URI admin() {
            return URI.create((tls ? "https" : "http") + "://127.0.0.1:" + adminPort);
        }
    }

    private final KubernetesClient client;
    private final Path runtimeJar;
    private final Path work;
    private final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    final Map<String, HostProcess> hosts = new ConcurrentHashMap<>();
    /** Every host process ever started, so that the test can check each was stopped and close() can kill them. */
    final List<HostProcess> started = new ArrayList<>();

    final List<String> probes = new ArrayList<>();

    ProcessKubelet(KubernetesClient client, Path runtimeJar, Path work) {
        this.client = client;
        this.runtimeJar = runtimeJar;
        this.work = work;
    }

    /** The admin API of a host pod, or null while its process is not up (the operator's adminUri seam). */
    URI adminUri(Pod pod) {
        HostProcess h = hosts.get(pod.getMetadata().getName());
        return h == null ? null : h.admin();
    }

    /** One kubelet round: start what is new, report what is up, stop what was deleted. Never blocks long. */
    void sync() throws IOException, InterruptedException {
        Set<String> live = new HashSet<>();
        for (Pod p : client.pods().inAnyNamespace().list().getItems()) {
            String name = p.getMetadata().getName();
            live.add(name);
            String phase = p.getStatus() == null ? null : p.getStatus().getPhase();
            if (Labels.COMPONENT_PROBE.equals(p.getMetadata().getLabels().get(Labels.COMPONENT))) {
                if (phase == null) {
                    probe(p);
                }
                continue;
            }
            if (!Labels.isHost(p)) {
                continue;
            }
            HostProcess h = hosts.get(name);
            if (h == null) {
                hosts.put(name, start(p));
                continue;
            }
            if (!h.process().isAlive()) {
                throw new IllegalStateException("host process of pod " + name + " exited with "
                        + h.process().exitValue() + "; its log:\n" + Files.readString(h.log()));
            }
            if (!"Running".equals(phase) && answers(h.api().resolve(HostApi.LIVE_PATH))) {
                p.setStatus(new PodStatusBuilder()
                        .withPhase("Running")
                        .withPodIP("127.0.0.1")
                        .addNewContainerStatus()
                        .withName("runtime")
                        .withReady(true)
                        .withNewState()
                        .withNewRunning()
                        .endRunning()
                        .endState()
                        .endContainerStatus()
                        .build());
                client.pods()
                        .inNamespace(p.getMetadata().getNamespace())
                        .resource(p)
                        .updateStatus();
            }
        }
        for (var e : hosts.entrySet()) {
            if (!live.contains(e.getKey())) {
                stop(e.getValue());
                hosts.remove(e.getKey());
            }
        }
    }

    private HostProcess start(Pod pod) throws IOException {
        Container c = pod.getSpec().getContainers().get(0);
        int api = freePort();
        int admin = freePort();
        List<String> cmd = new ArrayList<>(List.of(
                javaBinary(),
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "--enable-native-access=ALL-UNNAMED",
                "-Dquarkus.http.host=127.0.0.1",
                "-Djava.io.tmpdir="
                        + Files.createDirectories(
                                work.resolve("tmp-" + pod.getMetadata().getName())),
                "-jar",
                runtimeJar.toString()));
        // The pod's own arguments (host --device cpu), then the loopback ports that stand in for the pod IP's.
        cmd.addAll(c.getArgs());
        cmd.addAll(List.of("--port", Integer.toString(api), "--admin-port", Integer.toString(admin)));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        Map<String, String> env = pb.environment();
        env.remove(HostApi.TOKEN_ENV);
        for (EnvVar v : c.getEnv()) {
            env.put(v.getName(), value(pod, v));
        }
        Path log = work.resolve(pod.getMetadata().getName() + ".log");
        pb.redirectErrorStream(true).redirectOutput(log.toFile());
        boolean tls = pod.getSpec().getVolumes().stream()
                .anyMatch(v -> v.getSecret() != null
                        && Labels.HOST_TLS_SECRET.equals(v.getSecret().getSecretName()));
        HostProcess h = new HostProcess(pod.getMetadata().getName(), pb.start(), api, admin, log, tls);
        started.add(h);
        return h;
    }

    /** An env var's value as the kubelet would give it: literal, or from a Secret; paths under a volume mapped. */
    private String value(Pod pod, EnvVar v) throws IOException {
        if (v.getValueFrom() != null && v.getValueFrom().getSecretKeyRef() != null) {
            var ref = v.getValueFrom().getSecretKeyRef();
            Secret s = client.secrets()
                    .inNamespace(pod.getMetadata().getNamespace())
                    .withName(ref.getName())
                    .get();
            return new String(Base64.getDecoder().decode(s.getData().get(ref.getKey())), StandardCharsets.UTF_8);
        }
        String value = v.getValue();
        for (VolumeMount m : pod.getSpec().getContainers().get(0).getVolumeMounts()) {
            if (value != null && value.equals(m.getMountPath())) {
                return Files.createDirectories(work.resolve("volume-" + m.getName()))
                        .toString();
            }
            if (value != null && value.startsWith(m.getMountPath() + "/")) {
                // A file of a Secret volume (the admin token, the admin certificate): written out as the kubelet
                // would, under a directory of this pod.
                Path dir = secretVolume(pod, m.getName());
                if (dir != null) {
                    return dir.resolve(value.substring(m.getMountPath().length() + 1))
                            .toString();
                }
            }
        }
        return value;
    }

    /** The files of the pod's Secret volume {@code name} in a directory of their own, or null if it is no Secret. */
    private Path secretVolume(Pod pod, String name) throws IOException {
        var volume = pod.getSpec().getVolumes().stream()
                .filter(x -> x.getName().equals(name) && x.getSecret() != null)
                .findFirst()
                .orElse(null);
        if (volume == null) {
            return null;
        }
        Secret s = client.secrets()
                .inNamespace(pod.getMetadata().getNamespace())
                .withName(volume.getSecret().getSecretName())
                .get();
        Path dir = Files.createDirectories(
                work.resolve("secret-" + pod.getMetadata().getName() + "-" + name));
        if (s != null && s.getData() != null) {
            for (var e : s.getData().entrySet()) {
                Files.write(dir.resolve(e.getKey()), Base64.getDecoder().decode(e.getValue()));
            }
        }
        return dir;
    }

    /** Runs the probe pod's command (inspect ... --output FILE URI) as a process; FILE becomes the message. */
    private void probe(Pod p) throws IOException, InterruptedException {
        List<String> args = new ArrayList<>(p.getSpec().getContainers().get(0).getArgs());
        int out = args.indexOf("--output");
        Path message = work.resolve(p.getMetadata().getName() + ".termination-log");
        args.set(out + 1, message.toString());
        List<String> cmd = new ArrayList<>(
                List.of(javaBinary(), "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", runtimeJar.toString()));
        cmd.addAll(args);
        Path log = work.resolve(p.getMetadata().getName() + ".log");
        Process proc = new ProcessBuilder(cmd)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        if (!proc.waitFor(60, TimeUnit.SECONDS)) {
            proc.destroyForcibly();
            throw new IllegalStateException(
                    "probe " + args + " did not finish in 60 s; log:\n" + Files.readString(log));
        }
        int exit = proc.exitValue();
        probes.add(args.get(args.size() - 1));
        String text = Files.exists(message) ? Files.readString(message) : Files.readString(log);
        p.setStatus(new PodStatusBuilder()
                .withPhase(exit == 0 ? "Succeeded" : "Failed")
                .addNewContainerStatus()
                .withName("inspect")
                .withNewState()
                .withNewTerminated()
                .withExitCode(exit)
                .withMessage(text)
                .withReason(exit == 0 ? "Completed" : "Error")
                .endTerminated()
                .endState()
                .endContainerStatus()
                .build());
        client.pods().inNamespace(p.getMetadata().getNamespace()).resource(p).updateStatus();
    }

    private boolean answers(URI uri) {
        try {
            HttpResponse<Void> r = http.send(
                    HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(2)).build(),
                    HttpResponse.BodyHandlers.discarding());
            return r.statusCode() == 200;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** SIGTERM (Quarkus shuts down cleanly), then SIGKILL after 10 s. */
    static void stop(HostProcess h) throws InterruptedException {
        h.process().destroy();
        if (!h.process().waitFor(10, TimeUnit.SECONDS)) {
            h.process().destroyForcibly();
            h.process().waitFor(5, TimeUnit.SECONDS);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static String javaBinary() {
        return ProcessHandle.current()
                .info()
                .command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }

    @Override
    public void close() {
        for (HostProcess h : started) {
            h.process().destroyForcibly();
        }
        for (HostProcess h : started) {
            try {
                h.process().waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
