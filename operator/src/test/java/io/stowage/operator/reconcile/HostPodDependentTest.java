package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvFromSource;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Toleration;
import io.stowage.hostapi.HostApi;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.crd.LlmDeploymentSpec;
import io.stowage.operator.inventory.Inventory;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.Taint;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@link HostPodDependent#desired}: the host pod of one device, built from the device, assignment and owners. */
class HostPodDependentTest {
    private static final OperatorConfig CFG = OperatorConfig.defaults();
    private static final Device GPU = new Device(
            "gpu-node/gpu-0",
            "gpu-node",
            DeviceKind.GPU,
            40L << 30,
            0,
            0,
            1L << 30,
            1.0,
            Map.of("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB"),
            List.of(new Taint("nvidia.com/gpu", "present", "NoSchedule")));
    private static final Device CPU =
            new Device("cpu-node/cpu", "cpu-node", DeviceKind.CPU, 8L << 30, 0, 0, 0, 1.0, Map.of(), List.of());

    private static LlmDeployment owner(String name, String uid) {
        LlmDeployment d = new LlmDeployment("team-a", name, new LlmDeploymentSpec("hf://org/repo/m.gguf", 1));
        d.getMetadata().setUid(uid);
        return d;
    }

    private static Container runtime(Pod pod) {
        return pod.getSpec().getContainers().get(0);
    }

    private static EnvVar env(Pod pod, String name) {
        return runtime(pod).getEnv().stream()
                .filter(e -> e.getName().equals(name))
                .findFirst()
                .orElse(null);
    }

    @Test
    void aGpuHostAsksTheDevicePluginForOneGpuOnItsNodeAndToleratesTheNodesTaints() {
        Pod pod = HostPodDependent.desired(
                CFG, "team-a", GPU, "{\"generation\":1}", List.of(owner("chat", "u1")), 5L << 30, Map.of(), List.of());

        assertThat(pod.getMetadata().getName()).isEqualTo(Labels.hostPodName("gpu-node/gpu-0"));
        assertThat(pod.getMetadata().getNamespace()).isEqualTo("team-a");
        assertThat(pod.getMetadata().getAnnotations())
                .containsEntry(Labels.DEVICE_ANNOTATION, "gpu-node/gpu-0")
                .containsEntry(Labels.ASSIGNMENT_ANNOTATION, "{\"generation\":1}");
        assertThat(pod.getMetadata().getLabels())
                .containsEntry(Labels.COMPONENT, Labels.COMPONENT_HOST)
                .containsEntry(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE);
        var resources = runtime(pod).getResources();
        assertThat(resources.getLimits()).containsEntry(Inventory.GPU_RESOURCE, new Quantity("1"));
        assertThat(resources.getRequests()).containsEntry(Inventory.GPU_RESOURCE, new Quantity("1"));
        var term = pod.getSpec()
                .getAffinity()
                .getNodeAffinity()
                .getRequiredDuringSchedulingIgnoredDuringExecution()
                .getNodeSelectorTerms()
                .get(0);
        assertThat(term.getMatchFields().get(0).getKey()).isEqualTo("metadata.name");
        assertThat(term.getMatchFields().get(0).getValues()).containsExactly("gpu-node");
        assertThat(pod.getSpec().getTolerations())
                .extracting(Toleration::getKey, Toleration::getValue, Toleration::getEffect)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("nvidia.com/gpu", "present", "NoSchedule"));
        assertThat(runtime(pod).getArgs()).containsExactly(HostApi.HOST_COMMAND, HostApi.DEVICE_OPTION, "cuda");
        assertThat(runtime(pod).getImage()).isEqualTo("ghcr.io/stowage/runtime-cuda:0.1.0");
        assertThat(env(pod, HostApi.DEVICE_ID_ENV).getValue()).isEqualTo("gpu-node/gpu-0");
    }

    @Test
    void aCpuHostRequestsAndIsLimitedToTheMemoryItWasPlanned() {
        long budget = 3L << 30;
        Pod pod = HostPodDependent.desired(CFG, "team-a", CPU, "{}", List.of(), budget, Map.of(), List.of());

        var resources = runtime(pod).getResources();
        assertThat(resources.getRequests()).containsEntry("memory", new Quantity(Long.toString(budget)));
        assertThat(resources.getLimits()).containsEntry("memory", new Quantity(Long.toString(budget)));
        assertThat(resources.getLimits()).doesNotContainKey(Inventory.GPU_RESOURCE);
        assertThat(runtime(pod).getArgs()).containsExactly(HostApi.HOST_COMMAND, HostApi.DEVICE_OPTION, "cpu");
        assertThat(runtime(pod).getImage()).isEqualTo("ghcr.io/stowage/runtime:0.1.0");
    }

    @Test
    void gpuHostsRunTheConfiguredCudaImageAndCpuHostsTheRuntimeImage() {
        OperatorConfig d = OperatorConfig.defaults();
        OperatorConfig cfg = new OperatorConfig(
                "registry.example/stowage/runtime:7",
                "registry.example/gpu/runtime@sha256:" + "a".repeat(64),
                d.imagePullPolicy(),
                d.modelCacheHostPath(),
                d.modelCachePvc(),
                d.modelCacheSizeLimit(),
                d.allowedModelHosts(),
                d.httpTimeout(),
                d.maxHeaderBytes(),
                d.dcgmService(),
                d.dcgmPort(),
                d.inventory(),
                d.memory(),
                d.serviceDomain(),
                d.namespaces(),
                d.disruption());

        Pod gpu = HostPodDependent.desired(cfg, "team-a", GPU, "{}", List.of(), 5L << 30, Map.of(), List.of());
        Pod cpu = HostPodDependent.desired(cfg, "team-a", CPU, "{}", List.of(), 1L << 30, Map.of(), List.of());

        assertThat(runtime(gpu).getImage()).isEqualTo("registry.example/gpu/runtime@sha256:" + "a".repeat(64));
        assertThat(runtime(cpu).getImage()).isEqualTo("registry.example/stowage/runtime:7");
    }

    @Test
    void theCudaImageDefaultsToTheRuntimeRepositoryWithCudaAndTheSameTag() {
        assertThat(OperatorConfig.cudaImageFor("ghcr.io/stowage/runtime:0.1.0"))
                .isEqualTo("ghcr.io/stowage/runtime-cuda:0.1.0");
        assertThat(OperatorConfig.cudaImageFor("localhost:5000/runtime")).isEqualTo("localhost:5000/runtime-cuda");
        String pinned = "ghcr.io/stowage/runtime@sha256:" + "b".repeat(64);
        assertThat(OperatorConfig.cudaImageFor(pinned)).isEqualTo(pinned);
    }

    @Test
    void everyDeploymentOnTheHostOwnsItAndItsReadyLabelsAreCarried() {
        Pod pod = HostPodDependent.desired(
                CFG,
                "team-a",
                GPU,
                "{}",
                List.of(owner("chat", "u1"), owner("coder", "u2")),
                1L << 30,
                Map.of(Labels.readyLabel("chat"), "true"),
                List.of());

        assertThat(pod.getMetadata().getOwnerReferences())
                .extracting(OwnerReference::getName, OwnerReference::getUid, OwnerReference::getKind)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("chat", "u1", LlmDeployment.KIND),
                        org.assertj.core.groups.Tuple.tuple("coder", "u2", LlmDeployment.KIND));
        assertThat(pod.getMetadata().getLabels()).containsEntry(Labels.readyLabel("chat"), "true");
    }

    @Test
    void theHostGetsTheModelCredentialsSecretSoAGatedHfModelDownloads() {
        Pod pod = HostPodDependent.desired(
                CFG,
                "team-a",
                GPU,
                "{}",
                List.of(owner("gated", "u1")),
                1L << 30,
                Map.of(),
                List.of("hf://meta-llama/Llama-3.1-8B-Instruct/model.gguf"));

        List<EnvFromSource> from = runtime(pod).getEnvFrom();
        assertThat(from).hasSize(1);
        assertThat(from.get(0).getSecretRef().getName()).isEqualTo(Labels.MODEL_CREDENTIALS_SECRET);
        // Optional: a public model needs no Secret, and its absence must not keep the pod from starting.
        assertThat(from.get(0).getSecretRef().getOptional()).isTrue();
        // The admin token is an explicit variable, which wins over any key of the credentials Secret.
        assertThat(env(pod, HostApi.TOKEN_ENV).getValueFrom().getSecretKeyRef().getName())
                .isEqualTo(Labels.TOKEN_SECRET);
    }

    @Test
    void adminTlsMountsTheNamespacesCertificateReadOnlyAndNamesItsFiles() {
        Pod plain = HostPodDependent.desired(CFG, "team-a", CPU, "{}", List.of(), 1L << 30, Map.of(), List.of());
        Pod tls = HostPodDependent.desired(CFG, "team-a", CPU, "{}", List.of(), 1L << 30, Map.of(), List.of(), true);

        assertThat(env(plain, HostApi.TLS_CERT_FILE_ENV)).isNull();
        assertThat(env(tls, HostApi.TLS_CERT_FILE_ENV).getValue()).isEqualTo(HostApi.TLS_MOUNT + "/tls.crt");
        assertThat(tls.getSpec().getVolumes())
                .anySatisfy(v -> assertThat(
                                v.getSecret() == null ? null : v.getSecret().getSecretName())
                        .isEqualTo(Labels.HOST_TLS_SECRET));
        assertThat(runtime(tls).getVolumeMounts())
                .filteredOn(m -> m.getMountPath().equals(HostApi.TLS_MOUNT))
                .singleElement()
                .satisfies(m -> assertThat(m.getReadOnly()).isTrue());
    }

    @Test
    void theFirstOwnerIsTheHostsOnlyControllerSoThatDrainTreatsItAsManaged() {
        Pod pod = HostPodDependent.desired(
                CFG,
                "team-a",
                GPU,
                "{}",
                List.of(owner("chat", "u1"), owner("extract", "u2")),
                5L << 30,
                Map.of(),
                List.of());

        assertThat(pod.getMetadata().getOwnerReferences())
                .extracting(OwnerReference::getName, OwnerReference::getController)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("chat", true),
                        org.assertj.core.groups.Tuple.tuple("extract", false));
    }

    @Test
    void aHostDrainsWithinItsTerminationGraceAfterAPreStopSleepAndMayHaveAPriorityClass() {
        OperatorConfig cfg = CFG.withDisruption(new OperatorConfig.Disruption(
                java.time.Duration.ofSeconds(60),
                java.time.Duration.ZERO,
                java.time.Duration.ofSeconds(45),
                java.time.Duration.ofSeconds(7),
                "llm-serving",
                true,
                0));

        Pod pod = HostPodDependent.desired(
                cfg, "team-a", GPU, "{}", List.of(owner("chat", "u1")), 5L << 30, Map.of(), List.of());

        assertThat(pod.getSpec().getTerminationGracePeriodSeconds()).isEqualTo(45L);
        assertThat(pod.getMetadata().getAnnotations())
                .as("its emptyDirs (a cache and /tmp) do not hold the cluster autoscaler back")
                .containsEntry(HostPodDependent.AUTOSCALER_LOCAL_VOLUMES, "model-cache,tmp");
        assertThat(pod.getSpec().getPriorityClassName()).isEqualTo("llm-serving");
        assertThat(runtime(pod).getLifecycle().getPreStop().getSleep().getSeconds())
                .isEqualTo(7L);
        // 45 s of grace, 7 s asleep before SIGTERM, 3 s for the JVM's exit: 35 s to answer what is in flight.
        assertThat(env(pod, HostPodDependent.SHUTDOWN_TIMEOUT_ENV).getValue()).isEqualTo("35s");
    }

    @Test
    void byDefaultAHostHasNoPriorityClassAndNoPreStopWhenTheSleepIsZero() {
        OperatorConfig.Disruption d = OperatorConfig.Disruption.DEFAULTS;
        Pod defaults = HostPodDependent.desired(
                CFG, "team-a", GPU, "{}", List.of(owner("chat", "u1")), 5L << 30, Map.of(), List.of());
        assertThat(defaults.getSpec().getPriorityClassName()).isNull();
        assertThat(defaults.getSpec().getTerminationGracePeriodSeconds()).isEqualTo(30L);

        Pod noSleep = HostPodDependent.desired(
                CFG.withDisruption(new OperatorConfig.Disruption(
                        d.notReadyGrace(),
                        d.cordonGrace(),
                        d.terminationGrace(),
                        java.time.Duration.ZERO,
                        "",
                        true,
                        0)),
                "team-a",
                GPU,
                "{}",
                List.of(owner("chat", "u1")),
                5L << 30,
                Map.of(),
                List.of());
        assertThat(runtime(noSleep).getLifecycle()).isNull();
    }

    @Test
    void aHostDoesNotTolerateTheMarkOfANodeThatIsNotServing() {
        Device cordoned = NodeStates.unavailableTainted(
                        List.of(GPU),
                        Map.of(
                                GPU.id(),
                                new NodeStates.NodeState(NodeStates.State.MOVING, true, "node gpu-node is cordoned")))
                .get(0);

        Pod pod = HostPodDependent.desired(
                CFG, "team-a", cordoned, "{}", List.of(owner("chat", "u1")), 5L << 30, Map.of(), List.of());

        assertThat(pod.getSpec().getTolerations())
                .extracting(Toleration::getKey)
                .containsExactly("nvidia.com/gpu");
    }

    @Test
    void aNamespacesHostsShareOneDisruptionBudgetThatNoEvictionPassesWhileTheyServe() {
        var pdb = HostDisruptionBudgetDependent.desired("team-a", 0);

        assertThat(pdb.getMetadata().getName()).isEqualTo("stowage-hosts");
        assertThat(pdb.getMetadata().getNamespace()).isEqualTo("team-a");
        assertThat(pdb.getSpec().getMaxUnavailable().getIntVal()).isZero();
        assertThat(pdb.getSpec().getMinAvailable()).isNull();
        assertThat(pdb.getSpec().getUnhealthyPodEvictionPolicy()).isEqualTo("AlwaysAllow");
        assertThat(pdb.getSpec().getSelector().getMatchLabels())
                .isEqualTo(Map.of(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE, Labels.COMPONENT, Labels.COMPONENT_HOST));
    }
}
