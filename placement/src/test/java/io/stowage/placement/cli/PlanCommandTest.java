package io.stowage.placement.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.stowage.placement.gguf.GgufType;
import io.stowage.placement.gguf.GgufWriter;
import io.stowage.placement.memory.MemoryParameters;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PlanCommandTest {

    private static final long MIB = 1L << 20;
    private static final long GIB = 1L << 30;
    /** Tests run in the placement module; the examples sit at the repository root. */
    private static final Path EXAMPLES = Path.of("..", "examples", "plan");

    record Run(int exit, String out, String err) {}

    static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = Main.run(
                args,
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> json(String text) {
        return (Map<String, Object>) MiniJson.parse(text);
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> list(Object o) {
        return (List<Map<String, Object>>) o;
    }

    private static long num(Map<String, Object> m, String key) {
        return (long) (double) (Double) m.get(key);
    }

    @Test
    void examplePlanPlacesEveryReplicaAndPrintsTheTables() {
        Run r = run(
                "plan",
                "-f",
                EXAMPLES.resolve("deployments.yaml").toString(),
                "--devices",
                EXAMPLES.resolve("devices.yaml").toString());
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("Placement\nDEVICE", "Memory per deployment", "13 of 13 replicas placed on");
        // chat: Llama-3.1-8B Q4_K_M from models.yaml, 8192 tokens x 4 sequences of f16 KV = 4 GiB
        assertThat(r.out())
                .containsPattern("assistants/chat +llama 8\\.0B Q4_K_M +3/3 +8192 x4 +f16 +4\\.58 GiB +4\\.00 GiB");
        assertThat(r.out()).doesNotContain("Refused");
    }

    @Test
    void exampleJsonAgreesWithAnIndependentComputation() {
        Run r = run(
                "plan",
                "-f",
                EXAMPLES.resolve("deployments.yaml").toString(),
                "--devices",
                EXAMPLES.resolve("devices.yaml").toString(),
                "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        Map<String, Object> doc = json(r.out());
        assertThat(doc.get("allPlaced")).isEqualTo(true);

        Map<String, Map<String, Object>> deps = new HashMap<>();
        for (Map<String, Object> d : list(doc.get("deployments"))) {
            deps.put((String) d.get("id"), d);
            assertThat(num(d, "placed")).isEqualTo(num(d, "replicas"));
        }
        // assistants/chat: 32 layers · 2 · (8 KV heads · 128 · 2 B) = 131,072 B per token; · 8192 · 4
        Map<String, Object> chat = deps.get("assistants/chat");
        assertThat(num(chat, "weightBytes")).isEqualTo(4_912_898_048L);
        assertThat(num(chat, "kvBytesPerReplica")).isEqualTo(131_072L * 8192 * 4);
        // workspace: 4·512·47,104 + 4·64·128,256 + 512·448·36
        assertThat(num(chat, "workspaceBytes")).isEqualTo(4L * 512 * 47_104 + 4L * 64 * 128_256 + 512L * 448 * 36);
        assertThat(num(chat, "hostOverheadBytes")).isEqualTo(512 * MIB);
        // assistants/coder: Qwen 48 layers, q8_0 rows of 1024 values = 1088 B; 48·2·1088 per token; 16384 · 2
        assertThat(num(deps.get("assistants/coder"), "kvBytesPerReplica")).isEqualTo(48L * 2 * 1088 * 16384 * 2);
        // data/extract: default maxTokens 4096 (= the model's context), default 4 sequences; phi3 32 layers · 2 ·
        // (32·96·2)
        Map<String, Object> extract = deps.get("data/extract");
        assertThat(num(extract, "maxTokens")).isEqualTo(4096);
        assertThat(num(extract, "maxSequences")).isEqualTo(4);
        assertThat(num(extract, "kvBytesPerReplica")).isEqualTo(32L * 2 * 32 * 96 * 2 * 4096 * 4);
        assertThat(extract.get("computeShare")).isEqualTo(0.125);
        // chat and chat-batch name one file: one digest, so their weights are shared on a device
        assertThat(deps.get("assistants/chat-batch").get("digest")).isEqualTo(chat.get("digest"));

        // device capacities from devices.yaml: total − max(256 MiB, ceil(2% of total)) − foreign
        Map<String, Long> capacity = Map.of(
                "edge-l4/gpu-0", 23_034 * MIB - (long) Math.ceil(0.02 * 23_034 * MIB),
                "a100-box/gpu-1", 40_960 * MIB - (long) Math.ceil(0.02 * 40_960 * MIB) - 6 * GIB,
                "h100-node/gpu-1", 81_559 * MIB - (long) Math.ceil(0.02 * 81_559 * MIB));
        Map<String, String> deviceNode = new HashMap<>();
        for (Map<String, Object> dev : list(doc.get("devices"))) {
            String id = (String) dev.get("id");
            deviceNode.put(id, (String) dev.get("node"));
            if (capacity.containsKey(id)) {
                assertThat(num(dev, "capacityBytes")).as(id).isEqualTo(capacity.get(id));
            }
            // used = O_host + max A_m + Σ distinct W_m + Σ K_r over the replicas the device holds
            @SuppressWarnings("unchecked")
            Map<String, Object> reps = (Map<String, Object>) dev.get("replicas");
            long expected = 0;
            if (!reps.isEmpty()) {
                long maxWorkspace = 0;
                Set<Object> digests = new HashSet<>();
                long weights = 0;
                long kv = 0;
                for (Map.Entry<String, Object> e : reps.entrySet()) {
                    Map<String, Object> d = deps.get(e.getKey());
                    long count = (long) (double) (Double) e.getValue();
                    maxWorkspace = Math.max(maxWorkspace, num(d, "workspaceBytes"));
                    if (digests.add(d.get("digest"))) {
                        weights += num(d, "weightBytes");
                    }
                    kv += count * num(d, "kvBytesPerReplica");
                }
                expected = 512 * MIB + maxWorkspace + weights + kv;
            }
            assertThat(num(dev, "usedBytes")).as(id).isEqualTo(expected);
            assertThat(num(dev, "usedBytes")).as(id).isLessThanOrEqualTo(num(dev, "capacityBytes"));
            assertThat(num(dev, "freeBytes")).isEqualTo(num(dev, "capacityBytes") - num(dev, "usedBytes"));
        }
        // selector + toleration put the 70B model on the tainted H100 node; coder is spread 1 per node
        Set<String> coderNodes = new HashSet<>();
        for (Map<String, Object> p : list(doc.get("placements"))) {
            String replica = (String) p.get("replica");
            String node = deviceNode.get((String) p.get("device"));
            if (replica.startsWith("research/reasoning#")) {
                assertThat(node).isEqualTo("h100-node");
            } else {
                assertThat(node).as(replica).isNotEqualTo("h100-node");
            }
            if (replica.startsWith("assistants/coder#")) {
                assertThat(coderNodes.add(node)).as("coder spread").isTrue();
            }
        }
    }

    @Test
    void refusedReplicasExitWith3AndSayWhy(@TempDir Path dir) throws Exception {
        Files.copy(EXAMPLES.resolve("models.yaml"), dir.resolve("models.yaml"));
        Files.writeString(dir.resolve("big.yaml"), """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: big}
                spec:
                  model:
                    uri: hf://bartowski/Meta-Llama-3.1-70B-Instruct-GGUF/Meta-Llama-3.1-70B-Instruct-Q4_K_M.gguf
                  replicas: 2
                """);
        Files.writeString(dir.resolve("devices.csv"), "node,id,memory,count\nn1,gpu,23034MiB,2\n");
        Run r = run(
                "plan",
                "-f",
                dir.toString(),
                "--devices",
                dir.resolve("devices.csv").toString());
        assertThat(r.exit()).as(r.err()).isEqualTo(3);
        assertThat(r.out()).contains("Refused\n  default/big#0: ", "default/big#1: ", "0 of 2 replicas placed");
        assertThat(r.err()).contains("models.yaml doc 1: skipped: not a Kubernetes object");
    }

    @Test
    void readsModelFactsFromALocalGgufHeader(@TempDir Path dir) throws Exception {
        // a synthetic llama: 2 layers, n_embd 64, 4 heads, 2 KV heads (head dim 16), n_ff 128, vocab 32
        GgufWriter w = new GgufWriter()
                .putString("general.architecture", "llama")
                .putUInt32("llama.block_count", 2)
                .putUInt32("llama.embedding_length", 64)
                .putUInt32("llama.feed_forward_length", 128)
                .putUInt32("llama.attention.head_count", 4)
                .putUInt32("llama.attention.head_count_kv", 2)
                .putUInt32("llama.context_length", 256)
                .putUInt32("llama.vocab_size", 32)
                .addTensor("token_embd.weight", GgufType.F32, new long[] {64, 32}, new float[64 * 32]);
        Files.createDirectories(dir.resolve("models"));
        w.write(dir.resolve("models/tiny.gguf"));
        Files.writeString(dir.resolve("d.yaml"), """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: tiny}
                spec:
                  model: {uri: models/tiny.gguf}
                  context: {maxTokens: 100, maxSequences: 3}
                """);
        Files.writeString(dir.resolve("devices.yaml"), "devices:\n  - {node: n, memory: 1Gi}\n");
        Run r = run(
                "plan",
                "-f",
                dir.resolve("d.yaml").toString(),
                "--devices",
                dir.resolve("devices.yaml").toString(),
                "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        Map<String, Object> d = list(json(r.out()).get("deployments")).getFirst();
        assertThat(d.get("modelFactsFrom"))
                .isEqualTo("GGUF header of " + dir.toAbsolutePath().resolve("models/tiny.gguf"));
        assertThat(num(d, "weightBytes")).isEqualTo(64L * 32 * 4);
        // 2 layers · 2 · (2 KV heads · 16 · 2 B) = 256 B per token; 100 tokens → 7 blocks = 112 slots; · 3
        assertThat(num(d, "kvBytesPerToken")).isEqualTo(256);
        assertThat(num(d, "kvBytesPerReplica")).isEqualTo(256L * 112 * 3);

        Files.writeString(
                dir.resolve("d.yaml"), Files.readString(dir.resolve("d.yaml")).replace("100", "300"));
        Run tooLong = run(
                "plan",
                "-f",
                dir.resolve("d.yaml").toString(),
                "--devices",
                dir.resolve("devices.yaml").toString());
        assertThat(tooLong.exit()).isEqualTo(1);
        assertThat(tooLong.err())
                .contains(dir.resolve("d.yaml")
                        + " doc 1: spec.context.maxTokens: must be <= the model's context length 256, got 300");
    }

    @Test
    void readsTheRealStories260kHeaderAndComputesItsMemoryToTheByte(@TempDir Path dir) throws Exception {
        // the gguf package's test copy of karpathy's stories260K, Q8_0 (see src/test/resources/gguf/README.md)
        Path model = Path.of("src", "test", "resources", "gguf", "stories260K-q8_0.gguf")
                .toAbsolutePath();
        Files.writeString(dir.resolve("d.yaml"), """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: stories, namespace: demo}
                spec:
                  model: {uri: "file://%s"}
                  replicas: 2
                  context: {maxTokens: 500, maxSequences: 2, kvCacheType: q8_0}
                  placement: {device: cpu}
                """.formatted(model));
        Files.writeString(dir.resolve("devices.yaml"), "devices:\n  - {node: laptop, kind: cpu, memory: 8Gi}\n");
        Run r = run(
                "plan",
                "-f",
                dir.resolve("d.yaml").toString(),
                "--devices",
                dir.resolve("devices.yaml").toString(),
                "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        Map<String, Object> d = list(json(r.out()).get("deployments")).getFirst();
        assertThat(d.get("architecture")).isEqualTo("llama");
        assertThat(d.get("quantization")).isEqualTo("Q8_0");
        // tensors: token_embd and output 512 rows · 2 blocks · 34 B each; output_norm 64 F32; per layer
        // q 64·68, k 32·68, v 32·68, o 64·68, gate 172·68, up 172·68, ffn_down F32 172·64·4, two norms 64·4
        long perLayer = 64 * 68 + 32 * 68 + 32 * 68 + 64 * 68 + 172 * 68 + 172 * 68 + 172 * 64 * 4 + 2 * 256;
        assertThat(num(d, "weightBytes")).isEqualTo(2 * 512 * 68 + 256 + 5 * perLayer);
        // KV q8_0: K and V rows of 4 heads · 8 = 32 values = one 34-byte block; 5 layers · 68 = 340 per token
        assertThat(num(d, "kvBytesPerToken")).isEqualTo(340);
        // 500 tokens → 32 blocks of 16 = 512 slots, · 2 sequences
        assertThat(num(d, "kvBytesPerReplica")).isEqualTo(340L * 512 * 2);
        // 4·512·(2·64 + 8·8 + 8·8 + 4·16 + 2·172) + 4·64·512 + 512·ceil(172/32)·36
        assertThat(num(d, "workspaceBytes")).isEqualTo(4L * 512 * 664 + 4L * 64 * 512 + 512L * 6 * 36);
        assertThat(num(d, "hostOverheadBytes")).isEqualTo(MemoryParameters.DEFAULT_HOST_OVERHEAD_CPU_BYTES);
        Map<String, Object> dev = list(json(r.out()).get("devices")).getFirst();
        // both replicas on the one CPU device: one copy of the weights, two KV budgets
        assertThat(num(dev, "usedBytes"))
                .isEqualTo(MemoryParameters.DEFAULT_HOST_OVERHEAD_CPU_BYTES
                        + num(d, "workspaceBytes")
                        + num(d, "weightBytes")
                        + 2 * num(d, "kvBytesPerReplica"));
    }

    @Test
    void aPreviousPlanFedBackWithCurrentStaysPutUntilAHigherPriorityEvicts(@TempDir Path dir) throws Exception {
        Files.copy(EXAMPLES.resolve("models.yaml"), dir.resolve("models.yaml"));
        String low = """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: low}
                spec:
                  model: {uri: hf://bartowski/Meta-Llama-3.1-8B-Instruct-GGUF/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf}
                  replicas: 2
                  context: {maxTokens: 8192, maxSequences: 4}
                """;
        Files.writeString(dir.resolve("d.yaml"), low);
        Files.writeString(dir.resolve("devices.yaml"), "devices:\n  - {node: n, id: gpu-0, memory: 23034MiB}\n");
        String[] base = {
            "plan",
            "-f",
            dir.resolve("d.yaml").toString(),
            "--devices",
            dir.resolve("devices.yaml").toString()
        };
        Run first = run(concat(base, "--json"));
        assertThat(first.exit()).as(first.err()).isZero();
        Files.writeString(dir.resolve("running.json"), first.out());

        // unchanged manifests with the running replicas: nothing moves, nothing is evicted
        Run again = run(concat(base, "--current", dir.resolve("running.json").toString(), "--json"));
        assertThat(again.exit()).isZero();
        assertThat(list(json(again.out()).get("placements")))
                .isEqualTo(list(json(first.out()).get("placements")));

        // a priority-10 Qwen 14B (8.37 GiB weights + 3.19 GiB KV) does not fit beside both 4 GiB replicas
        Files.writeString(dir.resolve("d.yaml"), low + """
                ---
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: high}
                spec:
                  model: {uri: hf://bartowski/Qwen2.5-Coder-14B-Instruct-GGUF/Qwen2.5-Coder-14B-Instruct-Q4_K_M.gguf}
                  context: {maxTokens: 16384, maxSequences: 2, kvCacheType: q8_0}
                  placement: {priority: 10}
                """);
        Run evict = run(concat(base, "--current", dir.resolve("running.json").toString()));
        assertThat(evict.exit()).as(evict.out()).isEqualTo(3);
        assertThat(evict.out()).containsPattern("Evictions\n  default/low#[01] on n/gpu-0 for default/high#0: ");
        assertThat(evict.out()).contains("default/high x1");

        Files.writeString(
                dir.resolve("gone.json"),
                "{\"placements\": [{\"replica\": \"default/old#0\", \"device\": \"n/gpu-0\"}]}");
        Run gone = run(concat(base, "--current", dir.resolve("gone.json").toString()));
        assertThat(gone.err()).contains("warning: --current: default/old#0 belongs to no deployment in the manifests");
        Files.writeString(
                dir.resolve("bad.json"), "{\"placements\": [{\"replica\": \"default/low\", \"device\": \"n/gpu-0\"}]}");
        Run bad = run(concat(base, "--current", dir.resolve("bad.json").toString()));
        assertThat(bad.exit()).isEqualTo(1);
        assertThat(bad.err())
                .contains(dir.resolve("bad.json")
                        + " doc 1: placements[0].replica: must look like namespace/name#index, got \"default/low\"");
    }

    @Test
    void planListsTheIdleCopiesANewDeploymentEvictsWithBytesLeastRecentlyUsedFirst(@TempDir Path dir) throws Exception {
        Files.copy(EXAMPLES.resolve("models.yaml"), dir.resolve("models.yaml"));
        String manifests = """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: busy}
                spec:
                  model: {uri: hf://bartowski/Phi-3-mini-4k-instruct-GGUF/Phi-3-mini-4k-instruct-Q8_0.gguf}
                  context: {maxTokens: 4096, maxSequences: 1}
                ---
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: coder}
                spec:
                  model: {uri: hf://bartowski/Qwen2.5-Coder-14B-Instruct-GGUF/Qwen2.5-Coder-14B-Instruct-Q4_K_M.gguf}
                  context: {maxTokens: 4096, maxSequences: 1}
                  scaling: {minReplicas: 0, idleTimeout: 10m}
                ---
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: chat}
                spec:
                  model: {uri: hf://bartowski/Meta-Llama-3.1-8B-Instruct-GGUF/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf}
                  context: {maxTokens: 4096, maxSequences: 1}
                  scaling: {minReplicas: 0}
                """;
        String newcomer = """
                ---
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: gemma}
                spec:
                  model: {uri: hf://bartowski/gemma-2-9b-it-GGUF/gemma-2-9b-it-Q8_0.gguf}
                  context: {maxTokens: 4096, maxSequences: 1}
                """;
        Files.writeString(dir.resolve("d.yaml"), manifests);
        Files.writeString(dir.resolve("devices.yaml"), "devices:\n  - {node: n, id: gpu-0, memory: 23034MiB}\n");
        String[] base = {
            "plan",
            "-f",
            dir.resolve("d.yaml").toString(),
            "--devices",
            dir.resolve("devices.yaml").toString()
        };
        Run first = run(concat(base, "--json"));
        assertThat(first.exit()).as(first.err()).isZero();
        Map<String, Object> firstDoc = json(first.out());
        // busy runs; coder and chat are scaled to zero with their weights resident (coder used least recently)
        String busyOnly = firstDoc.get("placements").toString().contains("default/busy#0")
                ? "{\"replica\": \"default/busy#0\", \"device\": \"n/gpu-0\"}"
                : null;
        assertThat(busyOnly).isNotNull();
        Files.writeString(dir.resolve("running.json"), """
                {"placements": [%s],
                 "idle": [{"deployment": "default/coder", "device": "n/gpu-0", "lastUsed": "2026-01-01T10:00:00Z"},
                          {"deployment": "default/chat", "device": "n/gpu-0", "lastUsed": "2026-01-01T11:00:00Z"}]}
                """.formatted(busyOnly));
        String[] withIdle =
                concat(base, "--current", dir.resolve("running.json").toString());

        // nothing new: both idle copies fit beside busy and stay, reclaimable; the idle deployments run no replica
        Run calm = run(concat(withIdle, "--json"));
        assertThat(calm.exit()).as(calm.err()).isZero();
        Map<String, Object> calmDoc = json(calm.out());
        assertThat(list(calmDoc.get("placements")))
                .extracting(p -> p.get("replica"))
                .containsExactly("default/busy#0");
        assertThat(list(calmDoc.get("idleEvictions"))).isEmpty();
        assertThat(list(calmDoc.get("idle")))
                .extracting(p -> p.get("deployment"))
                .containsExactlyInAnyOrder("default/coder", "default/chat");
        long coderBytes = deploymentBytes(calmDoc, "default/coder");
        long chatBytes = deploymentBytes(calmDoc, "default/chat");
        assertThat(num(list(calmDoc.get("devices")).getFirst(), "reclaimableBytes"))
                .isEqualTo(coderBytes + chatBytes);

        // gemma needs the space: the least recently used copy (coder) goes, with its bytes; chat stays; busy runs on
        Files.writeString(dir.resolve("d.yaml"), manifests + newcomer);
        Run tight = run(concat(withIdle, "--json"));
        assertThat(tight.exit()).as(tight.err()).isZero();
        Map<String, Object> doc = json(tight.out());
        assertThat(list(doc.get("placements")))
                .extracting(p -> p.get("replica"))
                .containsExactlyInAnyOrder("default/busy#0", "default/gemma#0");
        assertThat(list(doc.get("idleEvictions"))).singleElement().satisfies(e -> {
            assertThat(e.get("deployment")).isEqualTo("default/coder");
            assertThat(num(e, "bytes")).isEqualTo(coderBytes);
            assertThat((String) e.get("reason")).startsWith("least recently used idle copy on n/gpu-0");
        });
        assertThat(list(doc.get("idle"))).extracting(p -> p.get("deployment")).containsExactly("default/chat");

        Run text = run(withIdle);
        assertThat(text.exit()).as(text.err()).isZero();
        assertThat(text.out())
                .contains("Idle copies (deployments scaled to zero, weights resident: reclaimable)\n  evict"
                        + " default/coder on n/gpu-0: ")
                .contains("(" + coderBytes + " bytes): least recently used idle copy on n/gpu-0")
                .containsPattern("  keep  default/chat on n/gpu-0: [0-9.]+ GiB reclaimable\n")
                .contains("2 of 2 replicas placed on 1 of 1 devices; 2 deployments scaled to zero\n");

        // an idle entry for a deployment that does not scale to zero is planned as usual, with a warning
        Files.writeString(dir.resolve("bad-idle.json"), """
                {"idle": [{"deployment": "default/busy", "device": "n/gpu-0"}]}
                """);
        Run notIdle = run(concat(base, "--current", dir.resolve("bad-idle.json").toString()));
        assertThat(notIdle.err())
                .contains("warning: --current: idle default/busy has no spec.scaling.minReplicas: 0, so it does not"
                        + " stay idle; its replicas are planned");
    }

    private static long deploymentBytes(Map<String, Object> doc, String id) {
        Map<String, Object> d = list(doc.get("deployments")).stream()
                .filter(x -> id.equals(x.get("id")))
                .findFirst()
                .orElseThrow();
        return num(d, "weightBytes") + num(d, "workspaceBytes");
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void fetchesHttpHeadersOnlyWhenAskedTo(@TempDir Path dir) throws Exception {
        byte[] gguf = Files.readAllBytes(Path.of("src", "test", "resources", "gguf", "stories260K-q8_0.gguf"));
        com.sun.net.httpserver.HttpServer server =
                com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 0);
        // a server that ignores Range and sends the whole file
        server.createContext("/m.gguf", ex -> {
            ex.sendResponseHeaders(200, gguf.length);
            try (var body = ex.getResponseBody()) {
                body.write(gguf);
            } catch (java.io.IOException closedEarly) {
                // the reader stops once it has the header
            }
        });
        server.start();
        try {
            String uri = "http://127.0.0.1:" + server.getAddress().getPort() + "/m.gguf";
            Files.writeString(dir.resolve("d.yaml"), """
                    apiVersion: stowage.io/v1alpha1
                    kind: LlmDeployment
                    metadata: {name: web}
                    spec:
                      model: {uri: "%s"}
                    """.formatted(uri));
            Files.writeString(dir.resolve("devices.yaml"), "devices:\n  - {node: n, memory: 2Gi}\n");
            String[] base = {
                "plan",
                "-f",
                dir.resolve("d.yaml").toString(),
                "--devices",
                dir.resolve("devices.yaml").toString()
            };
            Run offline = run(base);
            assertThat(offline.exit()).isEqualTo(1);
            assertThat(offline.err())
                    .contains("no model facts for \"" + uri
                            + "\" (pass --fetch-headers to read its header over the network)");
            Run online = run(concat(base, "--fetch-headers", "--json"));
            assertThat(online.exit()).as(online.err()).isZero();
            Map<String, Object> d = list(json(online.out()).get("deployments")).getFirst();
            assertThat(d.get("modelFactsFrom")).isEqualTo("GGUF header fetched from " + uri);
            assertThat(num(d, "kvBytesPerToken")).isEqualTo(5 * 2 * 32 * 2); // f16, 5 layers, rows of 32
            assertThat(num(d, "maxTokens")).isEqualTo(512); // the default 4096 capped at the model's context
        } finally {
            server.stop(0);
        }
    }

    @Test
    void invalidInputExitsWith1AndNamesTheField(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("d.yaml"), """
                apiVersion: stowage.io/v1alpha1
                kind: LlmDeployment
                metadata: {name: x}
                spec:
                  model: {uri: "s3://bucket/model.gguf"}
                """);
        Run r = run(
                "plan",
                "-f",
                dir.resolve("d.yaml").toString(),
                "--devices",
                EXAMPLES.resolve("devices.yaml").toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err())
                .contains(
                        dir.resolve("d.yaml") + " doc 1: spec.model.uri: no model facts for \"s3://bucket/model.gguf\" "
                                + "(plan cannot read s3:// sources); add it to the models catalog (--models FILE)");
    }

    @Test
    void usageErrorsExitWith2AndHelpExitsWith0() {
        Run missing = run("plan", "-f", "x.yaml");
        assertThat(missing.exit()).isEqualTo(2);
        assertThat(missing.err()).contains("stowage plan: option --devices is required", "--help");
        Run unknown = run("plan", "--frobnicate");
        assertThat(unknown.exit()).isEqualTo(2);
        assertThat(unknown.err()).contains("unknown option \"--frobnicate\"");
        Run help = run("plan", "--help");
        assertThat(help.exit()).isZero();
        assertThat(help.out()).contains("usage: ./stowage plan", "3  some replicas are refused");
        assertThat(run("nope").exit()).isEqualTo(2);
        assertThat(run("--help").exit()).isZero();
        assertThat(run().exit()).isEqualTo(2);
    }

    @Test
    void manifestsWithoutAnyLlmDeploymentFailTheDryRunInsteadOfPassingIt(@org.junit.jupiter.api.io.TempDir Path dir)
            throws java.io.IOException {
        Path typo = dir.resolve("typo.yaml");
        Files.writeString(typo, """
                apiVersion: stowage.io/v1alpha1
                kind: LLMDeployment
                metadata:
                  name: chat
                spec:
                  model:
                    uri: hf://org/repo/model.gguf
                """);
        Run r = run(
                "plan",
                "-f",
                typo.toString(),
                "--devices",
                EXAMPLES.resolve("devices.yaml").toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("no LlmDeployment to plan").contains("typo.yaml");
    }
}
