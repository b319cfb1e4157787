package io.stowage.runtime.cli;

import io.stowage.hostapi.ModelHeader;
import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufFormatException;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.GgufTensorInfo;
import io.stowage.placement.gguf.GgufType;
import io.stowage.placement.gguf.ModelDescription;
import io.stowage.placement.memory.KvCacheType;
import io.stowage.placement.memory.MemoryBreakdown;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.runtime.engine.ModelSpec;
import io.stowage.runtime.engine.NativeEngineException;
import io.stowage.runtime.host.ModelFetcher;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code inspect MODEL.gguf [--json] [--output FILE]}: a model's header facts, tensor table and memory breakdown,
 * from the header only; {@code --output} also writes the {@link ModelHeader} summary the operator's probe reads.
 */
final class InspectCommand {
    static final String USAGE = """
            usage: ./stowage inspect MODEL [--json] [--output FILE] [--max-tokens N] [--max-sequences N] [--kv f16|q8_0|f32]

            Reads only the GGUF header (no weights are loaded) and prints the architecture, parameter count,
            quantization, hyperparameters, the tensor table and the memory breakdown of one replica by the
            placement memory model on a CPU host: weights W, KV cache K for max-tokens (default: the trained
            context) × max-sequences (default 1) in the KV type (default f16), the workspace A of a 512-token
            prefill step, and the host's fixed overhead.

            MODEL is a path or a file: URI; http(s), hf and s3 URIs are read over HTTP Range requests (the
            header only) and give the summary alone.

            --output FILE writes the header summary (JSON: architecture, name, parameters, quantization, shape)
            to FILE, or the error when the model cannot be read: the operator's probe pod passes its
            termination message file. The --json document carries the same summary as its "header" field.
            """;

    private InspectCommand() {}

    static int run(String[] argv, PrintStream out, PrintStream err) {
        Args args = Args.parse(
                "inspect", argv, Set.of("max-tokens", "max-sequences", "kv", "output"), Set.of("json", "help"));
        if (args.flag("help")) {
            out.print(USAGE);
            return 0;
        }
        if (args.positional().size() != 1) {
            throw new UsageException("inspect: give exactly one MODEL (a path or URI), got " + args.positional());
        }
        String output = args.option("output");
        KvCacheType kv = kvType(args.option("kv"));
        String model = args.positional().get(0);
        try {
            Source source = Source.of(model);
            GgufFile file = source.read();
            // The people's report below still shows a header the memory model cannot use; the summary cannot.
            ModelHeader header = output != null || source.path() == null ? summary(model, file) : null;
            if (output != null) {
                write(output, Json.compact(header));
            }
            if (source.path() == null) {
                // A remote header: the tensor table is there, but no file to check the engine against.
                out.println(args.flag("json") ? Json.pretty(header) : Json.compact(header));
                return 0;
            }
            Map<String, Object> report = report(source.path(), file, args, kv);
            if (args.flag("json")) {
                out.println(Json.pretty(report));
            } else {
                printText(report, out);
            }
            return 0;
        } catch (InspectException e) {
            err.println(e.getMessage());
            if (output != null) {
                try {
                    write(output, e.getMessage());
                } catch (InspectException again) {
                    err.println(again.getMessage());
                }
            }
            return 1;
        }
    }

    /** The summary of a header; a header the memory model cannot read (a missing hyperparameter) is an error. */
    static ModelHeader summary(String model, GgufFile file) throws InspectException {
        try {
            return ModelHeader.from(file);
        } catch (GgufFormatException | IllegalArgumentException | ArithmeticException e) {
            throw new InspectException(
                    "inspect: " + model + " has a header the memory model cannot use: " + e.getMessage());
        }
    }

    private static void write(String output, String text) throws InspectException {
        try {
            Files.writeString(Path.of(output), text + "\n", StandardCharsets.UTF_8);
        } catch (IOException | RuntimeException e) {
            throw new InspectException("inspect: cannot write --output " + output + ": " + e);
        }
    }

    /** An expected failure of inspect: the message is the whole story (what, which file, why). */
    static final class InspectException extends Exception {
        InspectException(String message) {
            super(message);
        }
    }

    /** Where the header comes from: a local file (path or file: URI) or a remote URI read over Range requests. */
    record Source(String text, Path path, URI remote) {
        static Source of(String text) throws InspectException {
            int colon = text.indexOf(':');
            String scheme = colon > 1 && text.substring(0, colon).matches("[A-Za-z][A-Za-z0-9+.-]*")
                    ? text.substring(0, colon).toLowerCase(Locale.ROOT)
                    : null;
            if (scheme == null) {
                return new Source(text, Path.of(text), null);
            }
            try {
                switch (scheme) {
                    case "file" -> {
                        return new Source(text, Path.of(new URI(text)), null);
                    }
                    case "http", "https", "hf", "s3" -> {
                        String url = new ModelFetcher(null, System.getenv()).httpUrlOf(text);
                        return new Source(text, null, new URI(url));
                    }
                    default ->
                        throw new InspectException("inspect: " + text + ": unknown URI scheme '" + scheme
                                + "' (a path, or a file, http, https, hf or s3 URI)");
                }
            } catch (URISyntaxException | IllegalArgumentException e) {
                throw new InspectException("inspect: " + text + " is not a valid URI: " + e.getMessage());
            } catch (ModelFetcher.FetchException e) {
                throw new InspectException("inspect: " + e.getMessage());
            }
        }

        GgufFile read() throws InspectException {
            try {
                if (path != null) {
                    if (!Files.isRegularFile(path)) {
                        throw new InspectException("inspect: " + text + " does not exist or is not a file");
                    }
                    return GgufReader.readFile(path);
                }
                return GgufReader.builder()
                        .httpClient(HttpClient.newBuilder()
                                .followRedirects(HttpClient.Redirect.NORMAL)
                                .connectTimeout(Duration.ofSeconds(20))
                                .build())
                        .requestTimeout(Duration.ofSeconds(60))
                        .build()
                        .read(remote);
            } catch (GgufFormatException e) {
                throw new InspectException("inspect: " + text + " is not a valid GGUF file: " + e.getMessage());
            } catch (IOException e) {
                throw new InspectException("inspect: cannot read " + text + ": " + e.getMessage());
            }
        }
    }

    static KvCacheType kvType(String text) {
        try {
            return text == null ? KvCacheType.F16 : KvCacheType.parse(text);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--kv: " + e.getMessage());
        }
    }

    static Map<String, Object> report(Path path, GgufFile file, Args args, KvCacheType kv) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("file", path.toString());
        try {
            r.put("header", ModelHeader.from(file));
        } catch (GgufFormatException | IllegalArgumentException | ArithmeticException e) {
            // Reported below as descriptionError.
        }
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
                MemoryBreakdown b = memory.estimate(d.shape(), maxTokens, maxSeqs, kv, DeviceKind.CPU);
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
                out.printf(Locale.ROOT, "  host overhead  %12s  (CPU host, once per device)%n", Bytes.human((long)
                        m.get("hostOverheadBytes")));
                out.printf(Locale.ROOT, "  total          %12s  (one replica on its own device)%n", Bytes.human((long)
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
