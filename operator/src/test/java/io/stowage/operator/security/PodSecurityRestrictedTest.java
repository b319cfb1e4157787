package io.stowage.operator.security;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Volume;
import io.stowage.hostapi.HostApi;
import io.stowage.operator.model.ModelResolver;
import io.stowage.operator.reconcile.HostPodDependent;
import io.stowage.operator.reconcile.OperatorConfig;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The pods the operator creates are admitted in a namespace labelled
 * {@code pod-security.kubernetes.io/enforce: restricted}, unless the user opts into a node directory.
 */
class PodSecurityRestrictedTest {
    private static final Device GPU =
            new Device("node-a/gpu-0", "node-a", DeviceKind.GPU, 16L << 30, 0, 0, 0, 1.0, Map.of(), List.of());
    private static final Device CPU =
            new Device("node-a/cpu", "node-a", DeviceKind.CPU, 4L << 30, 0, 0, 0, 1.0, Map.of(), List.of());

    private static Pod host(OperatorConfig cfg, Device d, List<String> sources) {
        return HostPodDependent.desired(cfg, "team-a", d, "{}", List.of(), 1L << 30, Map.of(), sources, true);
    }

    private static Volume cache(Pod p) {
        return p.getSpec().getVolumes().stream()
                .filter(v -> v.getName().equals("model-cache"))
                .findFirst()
                .orElseThrow();
    }

    @Test
    void hostPodsWithTheDefaultCacheAndPvcOrRemoteSourcesAreRestrictedAdmissible() {
        OperatorConfig cfg = OperatorConfig.defaults();
        for (Device d : List.of(GPU, CPU)) {
            Pod p = host(cfg, d, List.of("pvc://models/llm/a.gguf", "hf://org/repo/b.gguf"));
            assertThat(PodSecurityStandards.restrictedViolations(p.getSpec()))
                    .as("host pod on %s", d.id())
                    .isEmpty();
        }
    }

    @Test
    void theDefaultCacheIsAnEmptyDirTheNonRootHostCanWriteThroughItsFsGroup() {
        Pod p = host(OperatorConfig.defaults(), CPU, List.of());

        Volume cache = cache(p);
        assertThat(cache.getHostPath()).as("no root-owned hostPath").isNull();
        assertThat(cache.getEmptyDir()).isNotNull();
        assertThat(cache.getEmptyDir().getSizeLimit()).isNull();
        var sc = p.getSpec().getSecurityContext();
        assertThat(sc.getRunAsUser()).isEqualTo(10001L);
        assertThat(sc.getFsGroup())
                .as("emptyDir and PVC mounts are group-writable for the host")
                .isEqualTo(10001L);
        assertThat(p.getSpec().getContainers().get(0).getVolumeMounts()).anySatisfy(m -> {
            assertThat(m.getName()).isEqualTo("model-cache");
            assertThat(m.getMountPath()).isEqualTo(HostApi.CACHE_MOUNT);
            assertThat(m.getReadOnly()).isNotEqualTo(Boolean.TRUE);
        });
    }

    @Test
    void aSizeLimitAndAPvcCacheAreHonouredAndAnOptedInNodeDirectoryMustExist() {
        Pod sized = host(OperatorConfig.defaults().withModelCache("", "", "50Gi"), CPU, List.of());
        assertThat(cache(sized).getEmptyDir().getSizeLimit().toString()).isEqualTo("50Gi");

        Pod claim = host(OperatorConfig.defaults().withModelCache("/ignored", "model-cache", ""), CPU, List.of());
        assertThat(cache(claim).getPersistentVolumeClaim().getClaimName()).isEqualTo("model-cache");
        assertThat(PodSecurityStandards.restrictedViolations(claim.getSpec())).isEmpty();

        Pod node = host(OperatorConfig.defaults().withModelCache("/srv/stowage", "", ""), CPU, List.of());
        assertThat(cache(node).getHostPath().getType())
                .as("never DirectoryOrCreate: the kubelet would create it root 0755")
                .isEqualTo("Directory");
        assertThat(PodSecurityStandards.restrictedViolations(node.getSpec()))
                .singleElement()
                .asString()
                .contains("model-cache", "hostPath");
    }

    @Test
    void aBadSizeLimitIsRefusedWithTheValueAndAnExample() {
        org.assertj.core.api.Assertions.assertThatThrownBy(
                        () -> OperatorConfig.defaults().withModelCache("", "", "lots"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("\"lots\"")
                .hasMessageContaining("50Gi");
    }

    @Test
    void fileSourcesAreTheUsersHostPathAndTheOnlyThingRestrictedRefuses() {
        Pod p = host(OperatorConfig.defaults(), CPU, List.of("file:///data/models/a.gguf"));

        assertThat(PodSecurityStandards.restrictedViolations(p.getSpec()))
                .singleElement()
                .asString()
                .contains("hostPath");
    }

    @Test
    void probePodsForPvcAndRemoteSourcesAreRestrictedAdmissible() {
        ModelResolver r = new ModelResolver(null, OperatorConfig.defaults(), Clock.systemUTC());
        for (String uri : List.of("pvc://models/llm/a.gguf", "s3://bucket/a.gguf", "hf://org/repo/a.gguf")) {
            Pod p = r.probePod("team-a", "stowage-probe-x", uri);
            assertThat(PodSecurityStandards.restrictedViolations(p.getSpec()))
                    .as("probe of %s", uri)
                    .isEmpty();
        }
        Pod file = r.probePod("team-a", "stowage-probe-y", "file:///data/models/a.gguf");
        assertThat(PodSecurityStandards.restrictedViolations(file.getSpec()))
                .singleElement()
                .asString()
                .contains("hostPath");
    }

    @Test
    void theExamplesPodsAreRestrictedAdmissible() throws java.io.IOException {
        java.nio.file.Path dir = java.nio.file.Path.of(System.getProperty("repo.root", ".."))
                .toAbsolutePath()
                .normalize()
                .resolve("examples/k8s");
        int pods = 0;
        try (var files = java.nio.file.Files.list(dir)) {
            for (java.nio.file.Path f :
                    files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList()) {
                for (String doc : java.nio.file.Files.readString(f).split("(?m)^---\\s*$")) {
                    if (doc.lines().anyMatch(l -> l.equals("kind: Pod"))) {
                        Pod p = io.fabric8.kubernetes.client.utils.Serialization.unmarshal(doc, Pod.class);
                        pods++;
                        assertThat(PodSecurityStandards.restrictedViolations(p.getSpec()))
                                .as(
                                        "%s: pod %s",
                                        f.getFileName(), p.getMetadata().getName())
                                .isEmpty();
                    }
                }
            }
        }
        assertThat(pods).as("pods in examples/k8s").isPositive();
    }

    @Test
    void theCheckerRefusesWhatRestrictedRefuses() {
        Pod p = host(OperatorConfig.defaults(), CPU, List.of());
        var c = p.getSpec().getContainers().get(0);
        c.getSecurityContext().setAllowPrivilegeEscalation(null);
        c.getSecurityContext().getCapabilities().setDrop(List.of());
        c.getSecurityContext().getCapabilities().setAdd(List.of("SYS_ADMIN"));
        p.getSpec().getSecurityContext().setRunAsNonRoot(null);
        p.getSpec().getSecurityContext().setSeccompProfile(null);
        p.getSpec().setHostNetwork(true);

        assertThat(PodSecurityStandards.restrictedViolations(p.getSpec()))
                .hasSize(6)
                .anySatisfy(v -> assertThat(v).contains("hostNetwork"))
                .anySatisfy(v -> assertThat(v).contains("allowPrivilegeEscalation"))
                .anySatisfy(v -> assertThat(v).contains("drop must contain ALL"))
                .anySatisfy(v -> assertThat(v).contains("SYS_ADMIN"))
                .anySatisfy(v -> assertThat(v).contains("runAsNonRoot"))
                .anySatisfy(v -> assertThat(v).contains("seccompProfile"));
    }
}
