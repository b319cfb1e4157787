package io.stowage.operator.reconcile;

import com.fasterxml.jackson.core.type.TypeReference;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.stowage.hostapi.ModelHeader;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import io.stowage.operator.dcgm.GpuMemory;
import io.stowage.operator.host.HostAdminClient;
import io.stowage.operator.model.ModelResolver;
import io.stowage.operator.tls.HostTlsSecrets;
import io.stowage.operator.tls.Pem;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.plan.StowagePlanner;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

/**
 * A cluster for component tests: Fabric8's mock API server in CRUD mode, a fake kubelet that runs pods,
 * real HTTP servers playing the hosts' admin APIs, and the operator's placement loop.
 */
final class TestCluster implements AutoCloseable {
    final KubernetesClient client;
    final Map<String, FakeHost> hosts = new ConcurrentHashMap<>();
    /** The pod UID each fake host runs for: a new pod of the same name starts a new host, as a kubelet would. */
    private final Map<String, String> hostUids = new ConcurrentHashMap<>();

    final List<GpuMemory> dcgm = new ArrayList<>();
    final List<String> probes = new ArrayList<>();
    final ModelServer models;
    OperatorConfig config;
    PlacementLoop loop;
    /** The hosts' admin TLS, or null for plain HTTP (see {@link #enableAdminTls}). */
    HostTlsSecrets tls;
    /** When set, the next host the kubelet starts serves this TLS context instead of its Secret's. */
    SSLContext nextHostTls;

    TestCluster(KubernetesClient client, OperatorConfig config) throws IOException {
        this.client = client;
        this.models = new ModelServer();
        this.models.files.put("/stories260K-q8_0.gguf", ModelServer.resource("/models/stories260K-q8_0.gguf"));
        this.config = config.withAllowedModelHosts(List.of("127.0.0.1"));
        if (client.apiextensions()
                        .v1()
                        .customResourceDefinitions()
                        .withName(LlmDeployment.CRD_NAME)
                        .get()
                == null) {
            client.apiextensions()
                    .v1()
                    .customResourceDefinitions()
                    .resource(crd())
                    .create();
        }
        restartOperator();
    }

    static CustomResourceDefinition crd() throws IOException {
        Path root =
                Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();
        return Serialization.unmarshal(
                Files.readString(root.resolve("crds/" + LlmDeployment.CRD_NAME + "-v1.yml")),
                CustomResourceDefinition.class);
    }

    /** Whether the operator reads the cluster through informer caches ({@link WatchedCluster}) or LISTs. */
    boolean watched;
    /** How many times the caches said that something changed. */
    final AtomicInteger changes = new AtomicInteger();

    PlacementLoop.PushOptions pushOptions = PlacementLoop.PushOptions.DEFAULTS;
    ClusterView view;

    /** Switches to informer caches and restarts the operator. */
    TestCluster watched() {
        watched = true;
        restartOperator();
        return this;
    }

    /** A fresh operator: no memory of earlier passes, as after a restart or a leader change. */
    void restartOperator() {
        Clock clock = Clock.systemUTC();
        if (loop != null) {
            loop.close();
        }
        view = watched ? new WatchedCluster(client, changes::incrementAndGet, Duration.ofSeconds(30)) : null;
        loop = new PlacementLoop(
                client,
                config,
                new ModelResolver(client, config, clock),
                new StowagePlanner()::plan,
                new HostAdminClient(config.httpTimeout()),
                pod -> {
                    FakeHost h = hosts.get(pod.getMetadata().getName());
                    return h == null ? null : h.uri();
                },
                () -> List.copyOf(dcgm),
                new EventRecorder(client, clock),
                clock,
                tls,
                view,
                pushOptions);
    }

    /**
     * Waits until the caches show what the API server holds (deployments, nodes, Stowage's pods and Services), as
     * a watch delivers it a moment later; a no-op without caches.
     */
    void awaitCaughtUp() {
        if (view == null) {
            return;
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (true) {
            boolean same = versions(view.deployments())
                            .equals(versions(client.resources(LlmDeployment.class)
                                    .inAnyNamespace()
                                    .list()
                                    .getItems()))
                    && versions(view.nodes())
                            .equals(versions(client.nodes().list().getItems()))
                    && versions(view.pods().stream().filter(Labels::isHost).toList())
                            .equals(versions(client.pods().inAnyNamespace().list().getItems().stream()
                                    .filter(Labels::isHost)
                                    .toList()));
            if (same) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the informer caches did not catch up with the API server in 20 s");
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }

    private static Map<String, String> versions(List<? extends HasMetadata> items) {
        Map<String, String> out = new TreeMap<>();
        items.forEach(i -> out.put(
                i.getMetadata().getNamespace() + "/" + i.getMetadata().getName(),
                i.getMetadata().getResourceVersion()));
        return out;
    }

    /** Turns the hosts' admin TLS on, with the CA in {@code operatorNamespace}, and restarts the operator. */
    void enableAdminTls(String operatorNamespace) {
        tls = new HostTlsSecrets(
                client,
                new HostTlsSecrets.Settings(
                        operatorNamespace, Duration.ofDays(90), Duration.ofDays(3650), Duration.ofMinutes(10)),
                Clock.systemUTC());
        restartOperator();
    }

    /** A TLS server context from a Secret's {@code tls.crt} and {@code tls.key}, as a host pod would mount them. */
    static SSLContext serverContext(Secret s) throws Exception {
        String cert = new String(
                Base64.getDecoder().decode(s.getData().get(HostTlsSecrets.TLS_CERT)), StandardCharsets.US_ASCII);
        String key = new String(
                Base64.getDecoder().decode(s.getData().get(HostTlsSecrets.TLS_KEY)), StandardCharsets.US_ASCII);
        return serverContext(Pem.parseCertificates(cert), Pem.parsePrivateKey(key));
    }

    static SSLContext serverContext(List<X509Certificate> chain, PrivateKey key) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        ks.setKeyEntry("host", key, new char[0], chain.toArray(X509Certificate[]::new));
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, new char[0]);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        return ctx;
    }

    String modelUrl() {
        return models.url("/stories260K-q8_0.gguf");
    }

    /** The GFD labels of the four real VKS vGPU nodes. */
    static List<Map<String, String>> vksLabels() throws IOException {
        try (InputStream in = TestCluster.class.getResourceAsStream("/gpu/vks-vgpu-4nodes.labels.json")) {
            return HostAdminClient.JSON.readValue(in, new TypeReference<List<Map<String, String>>>() {});
        }
    }

    /** The GFD README's A100-SXM4-40GB labels. */
    static Map<String, String> a100Labels() throws IOException {
        try (InputStream in = TestCluster.class.getResourceAsStream("/gpu/gfd-readme-a100-sxm4-40gb.node.yaml")) {
            return Serialization.unmarshal(in, Node.class).getMetadata().getLabels();
        }
    }

    Node addGpuNode(String name, Map<String, String> gfdLabels) {
        int count = Integer.parseInt(gfdLabels.getOrDefault("nvidia.com/gpu.count", "1"));
        Node n = new NodeBuilder()
                .withNewMetadata()
                .withName(name)
                .withLabels(gfdLabels)
                .addToLabels("kubernetes.io/hostname", name)
                .endMetadata()
                .withNewSpec()
                .endSpec()
                .withNewStatus()
                .addToAllocatable("nvidia.com/gpu", new Quantity(Integer.toString(count)))
                .addToAllocatable("memory", new Quantity("64Gi"))
                .addNewCondition()
                .withType("Ready")
                .withStatus("True")
                .endCondition()
                .endStatus()
                .build();
        return client.nodes().resource(n).create();
    }

    LlmDeployment apply(String ns, String name, int replicas, Consumer<LlmDeploymentSpec> tweak) {
        LlmDeploymentSpec spec = new LlmDeploymentSpec(modelUrl(), replicas);
        spec.getContext().setMaxTokens(512);
        tweak.accept(spec);
        LlmDeployment existing = get(ns, name);
        if (existing == null) {
            return client.resource(new LlmDeployment(ns, name, spec)).create();
        }
        return client.resource(existing).edit(x -> {
            x.setSpec(spec);
            return x;
        });
    }

    LlmDeployment get(String ns, String name) {
        return client.resources(LlmDeployment.class)
                .inNamespace(ns)
                .withName(name)
                .get();
    }

    List<Pod> hostPods(String ns) {
        return client.pods()
                .inNamespace(ns)
                .withLabel(Labels.COMPONENT, Labels.COMPONENT_HOST)
                .list()
                .getItems();
    }

    List<Event> events(String ns, String reason) {
        return client.v1().events().inNamespace(ns).list().getItems().stream()
                .filter(e -> reason.equals(e.getReason()))
                .toList();
    }

    /** The fake kubelet: every pod it has not seen runs now, with an IP; host pods get a fake admin API. */
    void kubelet() throws IOException {
        for (Pod p : client.pods().inAnyNamespace().list().getItems()) {
            if (p.getStatus() != null && p.getStatus().getPhase() != null) {
                continue;
            }
            String podName = p.getMetadata().getName();
            String uid = p.getMetadata().getUid();
            if (Labels.isHost(p)
                    && hosts.containsKey(podName)
                    && uid != null
                    && hostUids.containsKey(podName)
                    && !uid.equals(hostUids.get(podName))) {
                hosts.remove(podName).close();
            }
            if (Labels.isHost(p) && !hosts.containsKey(podName)) {
                Secret s = client.secrets()
                        .inNamespace(p.getMetadata().getNamespace())
                        .withName(Labels.TOKEN_SECRET)
                        .get();
                String token = new String(
                        Base64.getDecoder().decode(s.getData().get(Labels.TOKEN_KEY)), StandardCharsets.UTF_8);
                boolean mountsTls = p.getSpec().getVolumes().stream()
                        .anyMatch(v -> v.getSecret() != null
                                && Labels.HOST_TLS_SECRET.equals(v.getSecret().getSecretName()));
                SSLContext ctx = null;
                if (mountsTls) {
                    try {
                        ctx = nextHostTls != null
                                ? nextHostTls
                                : serverContext(client.secrets()
                                        .inNamespace(p.getMetadata().getNamespace())
                                        .withName(Labels.HOST_TLS_SECRET)
                                        .get());
                    } catch (Exception e) {
                        throw new IOException("host pod " + p.getMetadata().getName() + ": its TLS Secret: " + e, e);
                    }
                    nextHostTls = null;
                }
                hosts.put(podName, new FakeHost(token, ctx));
                if (uid != null) {
                    hostUids.put(podName, uid);
                }
            }
            if (Labels.COMPONENT_PROBE.equals(p.getMetadata().getLabels().get(Labels.COMPONENT))) {
                probe(p);
                continue;
            }
            p.setStatus(new PodStatusBuilder()
                    .withPhase("Running")
                    .withPodIP("127.0.0.1")
                    .addNewCondition()
                    .withType("Ready")
                    .withStatus("True")
                    .endCondition()
                    .build());
            client.pods()
                    .inNamespace(p.getMetadata().getNamespace())
                    .resource(p)
                    .updateStatus();
        }
    }

    /**
     * Plays the probe pod's {@code inspect --json}: reads the GGUF its URI names (a test resource) and
     * writes the summary to the termination message, exit 0; a missing file exits 1 with the error.
     */
    private void probe(Pod p) throws IOException {
        List<String> args = p.getSpec().getContainers().get(0).getArgs();
        String uri = args.get(args.size() - 1);
        String file = uri.substring(uri.lastIndexOf('/'));
        int exit;
        String message;
        try (InputStream in = TestCluster.class.getResourceAsStream("/models" + file)) {
            if (in == null) {
                exit = 1;
                message = "inspect: " + uri + ": no such file";
            } else {
                exit = 0;
                message = HostAdminClient.JSON.writeValueAsString(
                        ModelHeader.from(GgufReader.readBytes(in.readAllBytes())));
            }
        }
        probes.add(uri);
        p.setStatus(new PodStatusBuilder()
                .withPhase(exit == 0 ? "Succeeded" : "Failed")
                .addNewContainerStatus()
                .withName("inspect")
                .withNewState()
                .withNewTerminated()
                .withExitCode(exit)
                .withMessage(message)
                .withReason(exit == 0 ? "Completed" : "Error")
                .endTerminated()
                .endState()
                .endContainerStatus()
                .build());
        client.pods().inNamespace(p.getMetadata().getNamespace()).resource(p).updateStatus();
    }

    /** One pass, once the caches (if any) show the cluster as it is. */
    PlacementLoop.PassResult pass() {
        awaitCaughtUp();
        return loop.runPass();
    }

    /** Runs passes, with the kubelet in between, until a pass changes nothing the test can see. */
    PlacementLoop.PassResult converge() throws IOException {
        PlacementLoop.PassResult last = null;
        for (int i = 0; i < 4; i++) {
            awaitCaughtUp();
            last = loop.runPass();
            kubelet();
        }
        return last;
    }

    @Override
    public void close() {
        loop.close();
        hosts.values().forEach(FakeHost::close);
        models.close();
    }

    static Duration shortTimeout() {
        return Duration.ofMillis(500);
    }
}
