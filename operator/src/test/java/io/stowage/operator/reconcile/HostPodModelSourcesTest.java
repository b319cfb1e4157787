package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.stowage.hostapi.HostApi;
import io.stowage.operator.model.SourceMount;
import io.stowage.placement.plan.Device;
import io.stowage.placement.plan.DeviceKind;
import java.net.URI;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** What a host pod is told about where its models may come from: the operator's allowlist and its own mounts. */
class HostPodModelSourcesTest {
    private static final Device CPU =
            new Device("node-a/cpu", "node-a", DeviceKind.CPU, 1L << 30, 0, 0, 0, 1.0, Map.of(), List.of());

    private static Map<String, String> env(Pod pod) {
        return pod.getSpec().getContainers().get(0).getEnv().stream()
                .filter(e -> e.getValue() != null)
                .collect(Collectors.toMap(EnvVar::getName, EnvVar::getValue));
    }

    private static boolean under(String path, List<String> roots) {
        return roots.stream().anyMatch(r -> path.equals(r) || path.startsWith(r + "/"));
    }

    @Test
    void theHostMayDownloadFromTheOperatorsAllowlistAndReadEveryMountedSource() {
        OperatorConfig cfg = OperatorConfig.defaults()
                .withAllowedModelHosts(List.of("huggingface.co", "*.hf.co", "models.internal"));
        List<String> sources = List.of(
                "file:///data/models/a.gguf", // mounted at its own path
                "file:///opt/b.gguf", // would cover /opt/java: mounted below /source
                "pvc://claim/llm/c.gguf",
                "hf://org/repo/d.gguf");
        Pod pod = HostPodDependent.desired(cfg, "default", CPU, "{}", List.of(), 1L << 30, Map.of(), sources);
        Map<String, String> env = env(pod);

        assertThat(env).containsEntry(HostApi.MODEL_HOSTS_ENV, "huggingface.co,*.hf.co,models.internal");
        List<String> roots = Arrays.asList(env.get(HostApi.MODEL_ROOTS_ENV).split(","));
        assertThat(roots).containsExactly(HostApi.CACHE_MOUNT, SourceMount.ROOT, "/data/models");
        for (String uri : sources) {
            SourceMount m = SourceMount.of(uri);
            if (m != null) {
                assertThat(URI.create(m.podUri()).getPath())
                        .as(uri)
                        .satisfies(p -> assertThat(under(p, roots))
                                .as("%s under %s", p, roots)
                                .isTrue());
            }
        }
        for (VolumeMount m : pod.getSpec().getContainers().get(0).getVolumeMounts()) {
            // Every mount but the scratch directory and the admin Secrets (token, TLS) holds models.
            if (!List.of("/tmp", HostApi.TOKEN_MOUNT, HostApi.TLS_MOUNT).contains(m.getMountPath())) {
                assertThat(under(m.getMountPath(), roots))
                        .as("%s under %s", m.getMountPath(), roots)
                        .isTrue();
            }
        }
    }

    @Test
    void anEmptyAllowlistReachesTheHostAsNoHostsNotAsItsDefaults() {
        OperatorConfig cfg = OperatorConfig.defaults().withAllowedModelHosts(List.of());
        Pod pod = HostPodDependent.desired(cfg, "default", CPU, "{}", List.of(), 1L << 30, Map.of(), List.of());
        // an empty variable would leave the runtime's own default list in force; a lone comma is a list of none
        assertThat(env(pod)).containsEntry(HostApi.MODEL_HOSTS_ENV, ",");
        assertThat(env(pod)).containsEntry(HostApi.MODEL_ROOTS_ENV, HostApi.CACHE_MOUNT + "," + SourceMount.ROOT);
    }
}
