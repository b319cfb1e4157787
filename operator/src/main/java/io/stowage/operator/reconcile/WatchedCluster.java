package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.fabric8.kubernetes.client.informers.cache.Cache;
import io.fabric8.kubernetes.client.informers.cache.ItemStore;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.host.HostAdminClient;
import io.stowage.operator.inventory.Inventory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BiPredicate;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.jboss.logging.Logger;

/**
 * The cluster as informer caches (one LIST each at start, then watches): LlmDeployments, Nodes trimmed to what
 * the inventory reads, Stowage's pods and Services selected by label, and other pods only while they hold GPUs,
 * trimmed to their node, phase and GPU limits. A change that placement cares about calls {@code onChange}.
 */
public final class WatchedCluster implements ClusterView {
    private static final Logger LOG = Logger.getLogger(WatchedCluster.class);

    private final SharedIndexInformer<LlmDeployment> deployments;
    private final SharedIndexInformer<Node> nodes;
    private final SharedIndexInformer<Pod> ours;
    private final SharedIndexInformer<Pod> gpuPods;
    private final SharedIndexInformer<Service> services;
    private final List<SharedIndexInformer<?>> all;
    private final Duration syncTimeout;
    private final KubernetesSerialization serialization;

    /**
     * Starts the informers; {@link #deployments()} and the others wait for the first LIST of each.
     *
     * @param onChange called (on an informer thread) after a change that can alter a placement pass; it must not
     *     block
     */
    public WatchedCluster(KubernetesClient client, Runnable onChange, Duration syncTimeout) {
        this.syncTimeout = syncTimeout;
        this.serialization = client.getKubernetesSerialization();
        deployments = client.resources(LlmDeployment.class).inAnyNamespace().runnableInformer(0);
        deployments.itemStore(new TrimmingStore<>(WatchedCluster::withoutManagedFields));
        deployments.addEventHandler(handler(onChange, WatchedCluster::deploymentChanged));

        nodes = client.nodes().runnableInformer(0);
        nodes.itemStore(new TrimmingStore<>(WatchedCluster::trimNode));
        // The store holds trimmed nodes: a heartbeat or an image list that changes nothing placement reads is
        // no reason for a pass.
        nodes.addEventHandler(handler(onChange, (a, b) -> !sameNode(a, trimNode(b))));

        ours = client.pods()
                .inAnyNamespace()
                .withLabel(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE)
                .runnableInformer(0);
        ours.itemStore(new TrimmingStore<>(WatchedCluster::withoutManagedFields));
        // The operator's own label and annotation writes need no pass; the kubelet's status and deletions do.
        ours.addEventHandler(handler(
                onChange,
                (a, b) -> !Objects.equals(a.getStatus(), b.getStatus())
                        || !Objects.equals(
                                a.getMetadata().getDeletionTimestamp(),
                                b.getMetadata().getDeletionTimestamp())));

        gpuPods = client.pods().inAnyNamespace().runnableInformer(0);
        // The store drops every pod that holds no GPU; the namespace index would keep their keys.
        gpuPods.removeNamespaceIndex();
        gpuPods.itemStore(new TrimmingStore<>(WatchedCluster::trimGpuPod));
        gpuPods.addEventHandler(new ResourceEventHandler<>() {
            @Override
            public void onAdd(Pod p) {
                if (trimGpuPod(p) != null) {
                    onChange.run();
                }
            }

            @Override
            public void onUpdate(Pod old, Pod now) {
                // Only a pod the store held has an update: it finished, or its node or GPUs changed.
                Pod t = trimGpuPod(now);
                if (t == null || !sameGpuPod(old, t)) {
                    onChange.run();
                }
            }

            @Override
            public void onDelete(Pod p, boolean unknownFinalState) {
                onChange.run();
            }
        });

        services = client.services()
                .inAnyNamespace()
                .withLabel(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE)
                .runnableInformer(0);
        services.itemStore(new TrimmingStore<>(WatchedCluster::withoutManagedFields));
        // A deleted Service is written again by the next pass.
        services.addEventHandler(new ResourceEventHandler<>() {
            @Override
            public void onAdd(Service s) {}

            @Override
            public void onUpdate(Service old, Service now) {
                if (!Objects.equals(old.getSpec(), now.getSpec())) {
                    onChange.run();
                }
            }

            @Override
            public void onDelete(Service s, boolean unknownFinalState) {
                onChange.run();
            }
        });

        all = List.of(deployments, nodes, ours, gpuPods, services);
        all.forEach(i -> i.exceptionHandler((started, t) -> {
            LOG.warnf("informer for %s: %s; it retries", i.getApiTypeClass().getSimpleName(), t.toString());
            return true;
        }));
        all.forEach(SharedIndexInformer::start);
    }

    /**
     * Copies: a pass sets the status it writes on the object it was given, and a write that fails must not leave
     * the cache believing it.
     */
    @Override
    public List<LlmDeployment> deployments() {
        awaitSynced();
        return deployments.getStore().list().stream().map(serialization::clone).toList();
    }

    @Override
    public List<Node> nodes() {
        awaitSynced();
        return nodes.getStore().list();
    }

    @Override
    public List<Pod> pods() {
        awaitSynced();
        List<Pod> out = new ArrayList<>(ours.getStore().list());
        out.addAll(gpuPods.getStore().list());
        return out;
    }

    @Override
    public Service service(String namespace, String name) {
        awaitSynced();
        return services.getStore().getByKey(Cache.namespaceKeyFunc(namespace, name));
    }

    /** Whether every cache holds its first LIST. */
    public boolean synced() {
        return all.stream().allMatch(SharedIndexInformer::hasSynced);
    }

    /** How many objects the caches hold, by kind, for the benchmark and the logs. */
    public Map<String, Integer> sizes() {
        return Map.of(
                "llmdeployments", deployments.getStore().list().size(),
                "nodes", nodes.getStore().list().size(),
                "stowagePods", ours.getStore().list().size(),
                "gpuPods", gpuPods.getStore().list().size(),
                "services", services.getStore().list().size());
    }

    private void awaitSynced() {
        if (synced()) {
            return;
        }
        long deadline = System.nanoTime() + syncTimeout.toNanos();
        for (SharedIndexInformer<?> i : all) {
            long left = deadline - System.nanoTime();
            try {
                i.start().toCompletableFuture().get(Math.max(0, left), TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                throw new IllegalStateException("the " + i.getApiTypeClass().getSimpleName()
                        + " cache is not filled after " + syncTimeout.toSeconds()
                        + " s (is the API server reachable, and may the operator list and watch them?);"
                        + " this pass is skipped");
            } catch (ExecutionException e) {
                throw new IllegalStateException(
                        "the " + i.getApiTypeClass().getSimpleName() + " cache could not start: "
                                + e.getCause().getMessage(),
                        e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while the caches fill", e);
            }
        }
    }

    @Override
    public void close() {
        all.forEach(SharedIndexInformer::stop);
    }

    private static <T extends HasMetadata> ResourceEventHandler<T> handler(
            Runnable onChange, BiPredicate<T, T> changed) {
        return new ResourceEventHandler<>() {
            @Override
            public void onAdd(T o) {
                onChange.run();
            }

            @Override
            public void onUpdate(T old, T now) {
                if (changed.test(old, now)) {
                    onChange.run();
                }
            }

            @Override
            public void onDelete(T o, boolean unknownFinalState) {
                onChange.run();
            }
        };
    }

    /** A spec edit (a new generation), a deletion, or the finalizers: not the status the loop writes itself. */
    static boolean deploymentChanged(LlmDeployment a, LlmDeployment b) {
        ObjectMeta x = a.getMetadata();
        ObjectMeta y = b.getMetadata();
        return !Objects.equals(x.getGeneration(), y.getGeneration())
                || !Objects.equals(x.getDeletionTimestamp(), y.getDeletionTimestamp())
                || !Objects.equals(x.getFinalizers(), y.getFinalizers())
                || !HostAdminClient.JSON.valueToTree(a.getSpec()).equals(HostAdminClient.JSON.valueToTree(b.getSpec()));
    }

    private static boolean sameNode(Node a, Node b) {
        return Objects.equals(a.getMetadata().getLabels(), b.getMetadata().getLabels())
                && Objects.equals(a.getSpec(), b.getSpec())
                && Objects.equals(a.getStatus(), b.getStatus());
    }

    private static boolean sameGpuPod(Pod a, Pod b) {
        return Objects.equals(a.getSpec(), b.getSpec()) && Objects.equals(a.getStatus(), b.getStatus());
    }

    private static <T extends HasMetadata> T withoutManagedFields(T o) {
        o.getMetadata().setManagedFields(null);
        return o;
    }

    /** A node as the inventory reads it: labels, taints, schedulability, capacity and its Ready condition. */
    static Node trimNode(Node n) {
        NodeBuilder b = new NodeBuilder()
                .withMetadata(new ObjectMetaBuilder()
                        .withName(n.getMetadata().getName())
                        .withUid(n.getMetadata().getUid())
                        .withResourceVersion(n.getMetadata().getResourceVersion())
                        .withLabels(n.getMetadata().getLabels())
                        .build());
        if (n.getSpec() != null) {
            b.withNewSpec()
                    .withUnschedulable(n.getSpec().getUnschedulable())
                    .withTaints(n.getSpec().getTaints())
                    .endSpec();
        }
        if (n.getStatus() != null) {
            List<NodeCondition> ready = n.getStatus().getConditions() == null
                    ? List.of()
                    : n.getStatus().getConditions().stream()
                            .filter(c -> "Ready".equals(c.getType()))
                            .map(c -> new io.fabric8.kubernetes.api.model.NodeConditionBuilder()
                                    .withType(c.getType())
                                    .withStatus(c.getStatus())
                                    .withReason(c.getReason())
                                    // When it turned: a NotReady node's grace counts from it (not a heartbeat).
                                    .withLastTransitionTime(c.getLastTransitionTime())
                                    .build())
                            .toList();
            b.withNewStatus()
                    .withAllocatable(n.getStatus().getAllocatable())
                    .withCapacity(n.getStatus().getCapacity())
                    .withConditions(ready)
                    .endStatus();
        }
        return b.build();
    }

    /**
     * Another pod as the inventory reads it (its node, phase and GPU limits), or null when it is Stowage's, holds
     * no GPU or has finished: such a pod is not kept at all.
     */
    static Pod trimGpuPod(Pod p) {
        if (Labels.isHost(p) || p.getSpec() == null || p.getSpec().getContainers() == null) {
            return null;
        }
        String phase = p.getStatus() == null ? null : p.getStatus().getPhase();
        if ("Succeeded".equals(phase) || "Failed".equals(phase)) {
            return null;
        }
        List<Container> gpu = new ArrayList<>();
        for (Container c : p.getSpec().getContainers()) {
            Map<String, Quantity> limits =
                    c.getResources() == null ? null : c.getResources().getLimits();
            Quantity q = limits == null ? null : limits.get(Inventory.GPU_RESOURCE);
            if (q != null) {
                gpu.add(new ContainerBuilder()
                        .withName(c.getName())
                        .withNewResources()
                        .addToLimits(Inventory.GPU_RESOURCE, q)
                        .endResources()
                        .build());
            }
        }
        if (gpu.isEmpty()) {
            return null;
        }
        return new PodBuilder()
                .withMetadata(new ObjectMetaBuilder()
                        .withName(p.getMetadata().getName())
                        .withNamespace(p.getMetadata().getNamespace())
                        .withUid(p.getMetadata().getUid())
                        .withResourceVersion(p.getMetadata().getResourceVersion())
                        .build())
                .withNewSpec()
                .withNodeName(p.getSpec().getNodeName())
                .withContainers(gpu)
                .endSpec()
                .withNewStatus()
                .withPhase(phase)
                .endStatus()
                .build();
    }

    /**
     * An informer's store that keeps each object as {@code trim} makes it; null from {@code trim} keeps nothing
     * (and forgets what was kept under that key).
     */
    static final class TrimmingStore<T extends HasMetadata> implements ItemStore<T> {
        private final Map<String, T> items = new ConcurrentHashMap<>();
        private final UnaryOperator<T> trim;

        TrimmingStore(UnaryOperator<T> trim) {
            this.trim = trim;
        }

        @Override
        public String getKey(T obj) {
            return Cache.metaNamespaceKeyFunc(obj);
        }

        @Override
        public T put(String key, T obj) {
            T t = trim.apply(obj);
            return t == null ? items.remove(key) : items.put(key, t);
        }

        @Override
        public T remove(String key) {
            return items.remove(key);
        }

        @Override
        public Stream<String> keySet() {
            return items.keySet().stream();
        }

        @Override
        public Stream<T> values() {
            return items.values().stream();
        }

        @Override
        public int size() {
            return items.size();
        }

        @Override
        public T get(String key) {
            return items.get(key);
        }
    }
}
