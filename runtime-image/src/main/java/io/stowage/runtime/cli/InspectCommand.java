package io.stowage.runtime.cli;

import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufFormatException;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.GgufTensorInfo;
import io.stowage.placement.gguf.GgufType;
import io.stowage.placement.gguf.ModelDescription;
import io.stowage.placement.memory.MemoryBreakdown;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.runtime.engine.KvType;
import io.stowage.runtime.engine.ModelSpec;
import io.stowage.runtime.engine.NativeEngineException;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** {@code inspect MODEL.gguf [--json]}: a model's header facts, tensor table and memory breakdown, from the header only. */
final class InspectCommand {
    static final String USAGE = """
            usage: ./stowage inspect MODEL.gguf [--json] [--max-tokens N] [--max-sequences N] [--kv f16|q8_0|f32]

            Reads only the GGUF header (no weights are loaded) and prints the architecture, parameter count,
            quantization, hyperparameters, the tensor table and the memory breakdown of one replica by the
            placement memory model on a CPU host: weights W, KV cache K for max-tokens (default: the trained
            context) × max-sequences (default 1) in the KV type (default f16), the workspace A of a 512-token
            prefill step, and the host's fixed overhead.
            """;

    private InspectCommand() {}

    static int run(String[] argv, PrintStream out, PrintStream err) {
        Args args = Args.parse("inspect", argv, Set.of("max-tokens", "max-sequences", "kv"), Set.of("json", "help"));
        if (args.flag("help")) {
            out.print(USAGE);
            return 0;
        }
        if (args.positional().size() != 1) {
            throw new UsageException("inspect: give exactly one MODEL.gguf, got " + args.positional());
        }
        Path path = Path.of(args.positional().get(0));
        if (!Files.isRegularFile(path)) {
            err.println("inspect: " + path + " does not exist or is not a file");
            return 1;
        }
        KvType kv = kvType(args.option("kv"));
        GgufFile file;
        try {
            file = GgufReader.readFile(path);
        } catch (GgufFormatException e) {
            err.println("inspect: " + path + " is not a valid GGUF file: " + e.getMessage());
            return 1;
        } catch (IOException e) {
            err.println("inspect: cannot read " + path + ": " + e.getMessage());
            return 1;
        }
        Map<String, Object> report = report(path, file, args, kv);
        if (args.flag("json")) {
            out.println(Json.pretty(report));
        } else {
            printText(report, out);
        }
        return 0;
    }

    static KvType kvType(String text) {
        try {
            return text == null ? KvType.F16 : KvType.parse(text);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--kv: " + e.getMessage());
        }
    }

    static Map<String, Object> report(Path path, GgufFile file, Args args, KvType kv) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("file", path.toString());
        r.put("fileBytes", file.fileSize());
        r.put("ggufVersion", file.version());
        String arch = file.findString("general.architecture").orElse("unknown");
        r.put("architecture", arch);
        r.put("name", file.findString("general.name").orElse(""));
        long params = 0;
        long weightBytes = 0;
        Map<GgufType, Long> bytesByType = new EnumMap<>(GgufType.class);
        Map<GgufType, Integer> countByType = new EnumMap<>(GgufType.class);
        for (GgufTensorInfo t : file.tensors()) {
            params += t.elementCount();
            weightBytes += t.byteSize();
            bytesByType.merge(t.type(), t.byteSize(), Long::sum);
            countByType.merge(t.type(), 1, Integer::sum);
        }
        r.put("parameters", params);
        ModelDescription d = null;
        try {
            d = ModelDescription.from(file);
        } catch (GgufFormatException | ArithmeticException e) {
            // A header the memory model cannot read (a missing hyperparameter): still show its tensors.
            r.put("descriptionError", e.getMessage());
        }
        r.put(
                "quantization",
                d != null
                        ? d.quantization()
                        : bytesByType.entrySet().stream()
                                .max(Map.Entry.comparingByValue())
                                .map(x -> x.getKey().name())
                                .orElse("none"));
        file.findLong("general.file_type").ifPresent(ft -> r.put("fileType", ft));
        r.put("weightBytes", weightBytes);
        Map<String, Object> types = new LinkedHashMap<>();
        bytesByType.forEach(
                (type, bytes) -> types.put(type.name(), Map.of("tensors", countByType.get(type), "bytes", bytes)));
        r.put("bytesByType", types);
        try {
            ModelSpec.of(path, file);
            r.put("engine", "supported");
        } catch (NativeEngineException e) {
            r.put("engine", "not supported: " + e.getMessage());
        }
        if (d != null) {
            Map<String, Object> h = new LinkedHashMap<>();
            h.put("layers", d.blockCount());
            h.put("embeddingLength", d.embeddingLength());
            h.put("feedForwardLength", d.feedForwardLength());
            h.put("headCount", d.headCount());
            h.put("headCountKv", d.headCountKv());
            h.put("keyLength", d.keyLength());
            h.put("valueLength", d.valueLength());
            h.put("vocabSize", d.vocabSize());
            h.put("contextLength", d.contextLength());
            h.put("ropeDimensions", d.ropeDimensionCount());
            h.put("ropeFreqBase", d.ropeFreqBase());
            h.put("rmsEps", d.rmsEpsilon());
            r.put("hyperparameters", h);

            MemoryModel memory = MemoryModel.withDefaults();
            long context = d.contextLength() > 0 ? d.contextLength() : 4096;
            int maxTokens = args.intOption(
                    "inspect", "max-tokens", (int) Math.min(context, Integer.MAX_VALUE), 1, Integer.MAX_VALUE);
            int maxSeqs = args.intOption("inspect", "max-sequences", 1, 1, 1 << 20);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("kvType", kv.toString());
            m.put("maxTokens", maxTokens);
            m.put("maxSequences", maxSeqs);
            try {
                MemoryBreakdown b = memory.estimate(d.shape(), maxTokens, maxSeqs, kv.placementType(), DeviceKind.CPU);
                m.put("weightBytes", b.weightBytes());
                m.put("kvBytesPerToken", b.kvBytesPerToken());
                m.put("kvBytes", b.kvBytesPerReplica());
                m.put("workspaceBytes", b.workspaceBytes());
                m.put("workspaceBatchTokens", memory.parameters().prefillChunkTokens());
                m.put("workspaceLogitRows", memory.parameters().logitRows());
                m.put("hostOverheadBytes", b.hostOverheadBytes());
                m.put("totalBytes", b.totalForOneReplica());
                m.put("note", "placement memory model, CPU host: total = weights + KV + workspace + host overhead");
            } catch (IllegalArgumentException | ArithmeticException e) {
                m.put("error", e.getMessage());
            }
            r.put("memory", m);
        }
        List<Map<String, Object>> tensors = new ArrayList<>();
        for (GgufTensorInfo t : file.tensors()) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("name", t.name());
            row.put("type", t.type().name());
            row.put("shape", t.dims());
            row.put("bytes", t.byteSize());
            row.put("offset", t.absoluteOffset());
            tensors.add(row);
        }
        r.put("tensorCount", tensors.size());
        r.put("tensors", tensors);
        return r;
    }

    @SuppressWarnings("unchecked")
    private static void printText(Map<String, Object> r, PrintStream out) {
        out.printf(Locale.ROOT, "%s (GGUF v%s, %s)%n", r.get("file"), r.get("ggufVersion"), Bytes.human((long)
                r.get("fileBytes")));
        out.printf(
                Locale.ROOT,
                "  architecture   %s%s%n",
                r.get("architecture"),
                ((String) r.get("name")).isEmpty() ? "" : "  (" + r.get("name") + ")");
        out.printf(Locale.ROOT, "  parameters     %,d%n", (long) r.get("parameters"));
        out.printf(Locale.ROOT, "  quantization   %s%n", r.get("quantization"));
        out.printf(Locale.ROOT, "  weights        %s (%,d bytes)%n", Bytes.human((long) r.get("weightBytes")), (long)
                r.get("weightBytes"));
        out.printf(Locale.ROOT, "  engine         %s%n", r.get("engine"));
        Map<String, Object> h = (Map<String, Object>) r.get("hyperparameters");
        if (h != null) {
            out.println("hyperparameters");
            h.forEach((k, v) -> out.printf(Locale.ROOT, "  %-18s %s%n", k, v));
        }
        Map<String, Object> m = (Map<String, Object>) r.get("memory");
        if (m != null) {
            out.printf(
                    Locale.ROOT,
                    "memory (one replica: %s tokens × %s sequences, KV %s)%n",
                    m.get("maxTokens"),
                    m.get("maxSequences"),
                    m.get("kvType"));
            if (m.containsKey("error")) {
                out.println("  " + m.get("error"));
            } else {
                out.printf(Locale.ROOT, "  weights W      %12s%n", Bytes.human((long) m.get("weightBytes")));
                out.printf(
                        Locale.ROOT,
                        "  KV cache K     %12s  (%,d bytes per token)%n",
                        Bytes.human((long) m.get("kvBytes")),
                        (long) m.get("kvBytesPerToken"));
                out.printf(
                        Locale.ROOT,
                        "  workspace A    %12s  (%s-token step, %s logit rows)%n",
                        Bytes.human((long) m.get("workspaceBytes")),
                        m.get("workspaceBatchTokens"),
                        m.get("workspaceLogitRows"));
                out.printf(Locale.ROOT, "  total          %12s  (+ host overhead)%n", Bytes.human((long)
                        m.get("totalBytes")));
            }
        }
        out.println("bytes by type");
        ((Map<String, Map<String, Object>>) r.get("bytesByType"))
                .forEach((type, v) ->
                        out.printf(Locale.ROOT, "  %-6s %4s tensors %12s%n", type, v.get("tensors"), Bytes.human((long)
                                v.get("bytes"))));
        out.printf(Locale.ROOT, "tensors (%s)%n", r.get("tensorCount"));
        out.printf(Locale.ROOT, "  %-32s %-6s %-22s %12s %12s%n", "name", "type", "shape", "bytes", "offset");
        for (Map<String, Object> t : (List<Map<String, Object>>) r.get("tensors")) {
            out.printf(
                    Locale.ROOT,
                    "  %-32s %-6s %-22s %,12d %,12d%n",
                    t.get("name"),
                    t.get("type"),
                    Arrays.toString((long[]) t.get("shape")),
                    (long) t.get("bytes"),
                    (long) t.get("offset"));
        }
    }
}
