package io.stowage.placement.manifest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.memory.KvCacheType;
import io.stowage.placement.plan.DeviceRequest;
import io.stowage.placement.plan.Toleration;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ManifestReaderTest {

    private static final Path BASE = Path.of("/manifests").toAbsolutePath();

    private static final String FULL = """
            apiVersion: stowage.io/v1alpha1
            kind: LlmDeployment
            metadata:
              name: chat
              namespace: team-a
            spec:
              model:
                uri: hf://bartowski/Meta-Llama-3.1-8B-Instruct-GGUF/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf
                sha256: ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789
              servedModelName: llama-chat
              replicas: 3
              context:
                maxTokens: 8192
                maxSequences: 4
                kvCacheType: q8_0
              placement:
                priority: 10
                computeShare: 0.5
                maxReplicasPerNode: 1
                device: any
                nodeSelector:
                  nvidia.com/gpu.product: A100-SXM4-80GB
                tolerations:
                  - key: dedicated
                    operator: Equal
                    value: llm
                    effect: NoSchedule
                  - operator: Exists
            """;

    private static ManifestSet parse(String yaml) {
        return ManifestReader.parse("deployments.yaml", BASE, yaml);
    }

    private static String minimal(String name, String extraSpec) {
        return """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata:
                  name: %s
                spec:
                  model:
                    uri: models/tiny.gguf
                %s""".formatted(name, extraSpec.indent(2));
    }

    @Test
    void readsEveryFieldOfAFullManifest() {
        ManifestSet set = parse(FULL);
        assertThat(set.warnings()).isEmpty();
        LlmDeploymentManifest m = set.deployments().getFirst();
        assertThat(m.source()).isEqualTo("deployments.yaml doc 1");
        assertThat(m.id()).isEqualTo("team-a/chat");
        assertThat(m.model().scheme()).isEqualTo("hf");
        assertThat(m.model().localFile()).isNull();
        assertThat(m.model().sha256()).isEqualTo("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
        assertThat(PlannerInput.modelKey(m.model().uri(), m.model().sha256()))
                .isEqualTo("sha256:" + m.model().sha256());
        assertThat(m.servedModelName()).isEqualTo("llama-chat");
        assertThat(m.replicas()).isEqualTo(3);
        assertThat(m.maxTokens()).isEqualTo(8192);
        assertThat(m.maxSequences()).isEqualTo(4);
        assertThat(m.kvCacheType()).isEqualTo(KvCacheType.Q8_0);
        assertThat(m.priority()).isEqualTo(10);
        assertThat(m.computeShare()).isEqualTo(0.5);
        assertThat(m.maxReplicasPerNode()).isEqualTo(1);
        assertThat(m.device()).isEqualTo(DeviceRequest.ANY);
        assertThat(m.nodeSelector()).containsExactly(Map.entry("nvidia.com/gpu.product", "A100-SXM4-80GB"));
        assertThat(m.tolerations())
                .containsExactly(
                        new Toleration("dedicated", "Equal", "llm", "NoSchedule"),
                        new Toleration(null, "Exists", null, null));
    }

    @Test
    void appliesDefaultsAndResolvesABareRelativePathAgainstTheManifestDirectory() {
        LlmDeploymentManifest m = parse(minimal("tiny", "")).deployments().getFirst();
        assertThat(m.namespace()).isEqualTo("default");
        assertThat(m.servedModelName()).isEqualTo("tiny");
        assertThat(m.replicas()).isEqualTo(1);
        assertThat(m.maxTokens()).isNull();
        assertThat(m.maxTokensFor(0)).isEqualTo(4096);
        assertThat(m.maxTokensFor(2048)).isEqualTo(2048);
        assertThat(m.maxTokensFor(131072)).isEqualTo(4096);
        assertThat(m.maxSequences())
                .isEqualTo(LlmDeploymentManifest.DEFAULT_MAX_SEQUENCES)
                .isEqualTo(4);
        assertThat(m.kvCacheType()).isEqualTo(KvCacheType.F16);
        assertThat(m.priority()).isZero();
        assertThat(m.computeShare()).isEqualTo(0.25);
        assertThat(m.maxReplicasPerNode()).isZero();
        assertThat(m.device()).isEqualTo(DeviceRequest.GPU);
        assertThat(m.model().scheme()).isEqualTo("file");
        assertThat(m.model().localFile()).isEqualTo(BASE.resolve("models/tiny.gguf"));
        assertThat(PlannerInput.modelKey(m.model().uri(), null))
                .startsWith("uri:")
                .hasSize(4 + 32);
    }

    @Test
    void explicitMaxTokensAboveTheModelContextIsAnError() {
        LlmDeploymentManifest m = parse(minimal("tiny", "context:\n  maxTokens: 9000"))
                .deployments()
                .getFirst();
        assertThat(m.maxTokensFor(0)).isEqualTo(9000);
        assertThatThrownBy(() -> m.maxTokensFor(8192))
                .isInstanceOf(ManifestException.class)
                .hasMessage(
                        "deployments.yaml doc 1: spec.context.maxTokens: must be <= the model's context length 8192,"
                                + " got 9000; lower it to at most 8192 or leave it unset (then 4096)");
    }

    @Test
    void readsMultiDocumentFilesAndSkipsOtherKindsWithAWarning() {
        String yaml = minimal("a", "") + "---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n"
                + minimal("b", "replicas: 0");
        ManifestSet set = parse(yaml);
        assertThat(set.deployments()).extracting(LlmDeploymentManifest::id).containsExactly("default/a", "default/b");
        assertThat(set.deployments().get(1).source()).isEqualTo("deployments.yaml doc 3");
        assertThat(set.deployments().get(1).replicas()).isZero();
        assertThat(set.warnings())
                .containsExactly("deployments.yaml doc 2: skipped: kind Service is not LlmDeployment");
    }

    @Test
    void listsUnknownFieldsAsWarnings() {
        ManifestSet set = parse(minimal("a", "replicaz: 2\ncontext:\n  maxTokenz: 5"));
        assertThat(set.deployments()).hasSize(1);
        assertThat(set.warnings())
                .containsExactly(
                        "deployments.yaml doc 1: unknown field spec.replicaz (ignored)",
                        "deployments.yaml doc 1: unknown field spec.context.maxTokenz (ignored)");
    }

    @Test
    void errorsNameTheFileTheDocumentTheFieldAndTheValue() {
        String first = minimal("ok", "");
        assertError(
                first + "---\n" + minimal("bad", "replicas: -1"),
                "deployments.yaml doc 2: spec.replicas: must be >= 0, got -1");
        assertError(
                minimal("bad", "replicas: three"),
                "deployments.yaml doc 1: spec.replicas: must be an integer, got \"three\"");
        assertError(
                minimal("bad", "replicas: 2.5"), "deployments.yaml doc 1: spec.replicas: must be an integer, got 2.5");
        assertError(
                minimal("bad", "replicas: 20000"),
                "deployments.yaml doc 1: spec.replicas: must be <= 10000, got 20000");
        assertError(
                minimal("bad", "context:\n  kvCacheType: q4_0"),
                "deployments.yaml doc 1: spec.context.kvCacheType: must be one of f16, q8_0, f32, got \"q4_0\"");
        assertError(
                minimal("bad", "context:\n  maxSequences: 0"),
                "deployments.yaml doc 1: spec.context.maxSequences: must be >= 1, got 0");
        assertError(
                minimal("bad", "placement:\n  computeShare: 0"),
                "deployments.yaml doc 1: spec.placement.computeShare: must be > 0 and <= 1, got 0");
        assertError(
                minimal("bad", "placement:\n  computeShare: 1.5"),
                "deployments.yaml doc 1: spec.placement.computeShare: must be > 0 and <= 1, got 1.5");
        assertError(
                minimal("bad", "placement:\n  device: tpu"),
                "deployments.yaml doc 1: spec.placement.device: must be one of gpu, cpu, any, got \"tpu\"");
        assertError(
                minimal("bad", "placement:\n  maxReplicasPerNode: -2"),
                "deployments.yaml doc 1: spec.placement.maxReplicasPerNode: must be >= 0, got -2");
        assertError(
                minimal("bad", "placement:\n  nodeSelector:\n    fast: true"),
                "deployments.yaml doc 1: spec.placement.nodeSelector.fast: must be a string (quote it), got true");
        assertError(
                minimal("bad", "placement:\n  tolerations:\n    - operator: Exists\n      value: x"),
                "deployments.yaml doc 1: spec.placement.tolerations[0].value: must be empty when operator is Exists, got \"x\"");
        assertError(
                minimal("bad", "placement:\n  tolerations:\n    - key: a\n      effect: Sometimes"),
                "deployments.yaml doc 1: spec.placement.tolerations[0].effect: must be NoSchedule, PreferNoSchedule or NoExecute, got \"Sometimes\"");
        assertError(
                minimal("Bad_Name", ""),
                "deployments.yaml doc 1: metadata.name: must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253), got \"Bad_Name\"");
    }

    @Test
    void modelUrisAreChecked() {
        assertError(
                minimal("m", "").replace("models/tiny.gguf", "ftp://host/x.gguf"),
                "deployments.yaml doc 1: spec.model.uri: scheme must be one of https, http, file, pvc, s3, hf, got \"ftp://host/x.gguf\"");
        assertError(
                minimal("m", "").replace("models/tiny.gguf", "s3:bucket"),
                "deployments.yaml doc 1: spec.model.uri: must look like s3://..., got \"s3:bucket\"");
        assertError(
                minimal("m", "").replace("uri: models/tiny.gguf", "uri: models/tiny.gguf\n    sha256: 12zz"),
                "deployments.yaml doc 1: spec.model.sha256: must be 64 hexadecimal digits, got \"12zz\"");
        assertError(
                minimal("m", "").replace("uri: models/tiny.gguf", "sha256: null"),
                "deployments.yaml doc 1: spec.model.uri: is required");
        for (String ok : List.of("https://h/x.gguf", "http://h/x.gguf", "pvc://models/x.gguf", "s3://b/k.gguf")) {
            assertThat(parse(minimal("m", "").replace("models/tiny.gguf", ok))
                            .deployments()
                            .getFirst()
                            .model()
                            .uri())
                    .isEqualTo(ok);
        }
        LlmDeploymentManifest abs = parse(minimal("m", "").replace("models/tiny.gguf", "file:///srv/m.gguf"))
                .deployments()
                .getFirst();
        assertThat(abs.model().localFile()).isEqualTo(Path.of("/srv/m.gguf").toAbsolutePath());
    }

    @Test
    void structuralErrorsAreClear() {
        assertError(
                "apiVersion: stowage.io/v1\nkind: LlmDeployment\n",
                "deployments.yaml doc 1: apiVersion: must be stowage.io/v1alpha1, got \"stowage.io/v1\"");
        assertError(
                "apiVersion: stowage.io/v1alpha1\n",
                "deployments.yaml doc 1: kind: is required (expected LlmDeployment)");
        assertError("- a\n- b\n", "deployments.yaml doc 1: (document): must be a map, got a list");
        assertError(
                "apiVersion: stowage.io/v1alpha1\nkind: LlmDeployment\nmetadata: {name: x}\n",
                "deployments.yaml doc 1: spec: is required");
        assertError(
                minimal("a", "") + "---\n" + minimal("a", ""),
                "deployments.yaml doc 2: metadata.name: LlmDeployment default/a is already defined in deployments.yaml doc 1");
        assertThatThrownBy(() -> parse(minimal("a", "") + "---\nkey: [unclosed\n"))
                .isInstanceOf(ManifestException.class)
                .hasMessageStartingWith("deployments.yaml doc 2: invalid YAML at line");
        assertThatThrownBy(() -> parse("a: 1\na: 2\n"))
                .isInstanceOf(ManifestException.class)
                .hasMessageContaining("duplicate key a");
    }

    @Test
    void refusesArbitraryJavaTypes() {
        assertThatThrownBy(() -> parse("!!java.io.File [\"/etc/passwd\"]\n"))
                .isInstanceOf(ManifestException.class)
                .hasMessageStartingWith("deployments.yaml doc 1: invalid YAML");
    }

    @Test
    void readsADirectoryOfYamlFilesInNameOrder(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("b.yaml"), minimal("b", ""));
        Files.writeString(dir.resolve("a.yml"), minimal("a", ""));
        Files.writeString(dir.resolve("notes.txt"), "not yaml");
        ManifestSet set = ManifestReader.read(dir);
        assertThat(set.deployments()).extracting(LlmDeploymentManifest::name).containsExactly("a", "b");
        assertThat(set.deployments().getFirst().source()).isEqualTo(dir.resolve("a.yml") + " doc 1");
        assertThat(set.deployments().getFirst().model().localFile())
                .isEqualTo(dir.toAbsolutePath().resolve("models/tiny.gguf"));

        Files.writeString(dir.resolve("c.yaml"), minimal("a", ""));
        assertThatThrownBy(() -> ManifestReader.read(dir))
                .hasMessage(
                        dir.resolve("c.yaml") + " doc 1: metadata.name: LlmDeployment default/a is already defined in "
                                + dir.resolve("a.yml") + " doc 1");
        assertThatThrownBy(() -> ManifestReader.read(dir.resolve("missing.yaml")))
                .hasMessage(dir.resolve("missing.yaml") + ": no such file or directory");
    }

    @Test
    void readsScalingWithItsDefaultsAndDurations() {
        LlmDeploymentManifest none = single(minimal("a", ""));
        assertThat(none.scaling()).isNull();

        LlmDeploymentManifest zero =
                single(minimal("b", "replicas: 2\nscaling:\n  minReplicas: 0\n  idleTimeout: 1h30m"));
        assertThat(zero.scaling()).isEqualTo(new Scaling(0, java.time.Duration.ofMinutes(90)));
        assertThat(zero.scaling().scalesToZero()).isTrue();

        // minReplicas defaults to replicas (nothing is released), idleTimeout to 5m
        LlmDeploymentManifest defaults = single(minimal("c", "replicas: 3\nscaling: {}"));
        assertThat(defaults.scaling()).isEqualTo(new Scaling(3, java.time.Duration.ofMinutes(5)));

        assertThat(Scaling.parseDuration("1500ms")).isEqualTo(java.time.Duration.ofMillis(1500));
        assertThat(Scaling.text(java.time.Duration.ofMillis(1500))).isEqualTo("1500ms");
        assertThat(Scaling.text(java.time.Duration.ofSeconds(5430))).isEqualTo("1h30m30s");
    }

    @Test
    void badScalingIsAOneLineErrorNamingTheField() {
        assertError(
                minimal("a", "replicas: 1\nscaling: {minReplicas: 2}"),
                "deployments.yaml doc 1: spec.scaling.minReplicas: must be <= spec.replicas 1 (the replicas an active"
                        + " deployment runs), got 2");
        assertError(
                minimal("a", "scaling: {minReplicas: -1}"),
                "deployments.yaml doc 1: spec.scaling.minReplicas: must be >= 0, got -1");
        assertError(
                minimal("a", "scaling: {idleTimeout: 5 minutes}"),
                "deployments.yaml doc 1: spec.scaling.idleTimeout: must be a duration such as 30s, 5m or 1h30m (units"
                        + " ms, s, m, h), got \"5 minutes\"");
        assertError(
                minimal("a", "scaling: {idleTimeout: 300}"),
                "deployments.yaml doc 1: spec.scaling.idleTimeout: must be a duration string such as 5m (quote it),"
                        + " got 300");
        assertError(
                minimal("a", "scaling: {idleTimeout: 0s}"),
                "deployments.yaml doc 1: spec.scaling.idleTimeout: must be > 0, got \"0s\"");
        assertError(
                minimal("a", "scaling: {idleTimeout: 9999999999h}"),
                "deployments.yaml doc 1: spec.scaling.idleTimeout: must be at most 168h, got \"9999999999h\"");
    }

    private static LlmDeploymentManifest single(String yaml) {
        ManifestSet set = parse(yaml);
        assertThat(set.deployments()).hasSize(1);
        return set.deployments().getFirst();
    }

    private static void assertError(String yaml, String message) {
        assertThatThrownBy(() -> parse(yaml))
                .isInstanceOf(ManifestException.class)
                .hasMessage(message);
    }
}
