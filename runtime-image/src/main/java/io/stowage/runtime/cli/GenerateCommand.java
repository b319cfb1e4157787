package io.stowage.runtime.cli;

import io.stowage.placement.memory.KvCacheType;
import io.stowage.runtime.engine.Generator;
import io.stowage.runtime.engine.ModelSpec;
import io.stowage.runtime.engine.NativeModel;
import io.stowage.runtime.engine.SamplerParams;
import io.stowage.runtime.tokenizer.StreamingDecoder;
import io.stowage.runtime.tokenizer.Tokenizer;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** {@code generate --model M --prompt P -n N}: streams a continuation to stdout, speeds to stderr. */
final class GenerateCommand {
    static final String USAGE = """
            usage: ./stowage generate --model MODEL.gguf --prompt TEXT [-n N] [--temp T] [--seed S]
                                      [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]
                                      [--threads K] [--kv f16|q8_0|f32] [--json]

            Encodes TEXT with the model's tokenizer (BOS added when the model asks for it), generates up to N
            tokens (default 64) and streams the text to stdout. It stops early at an end-of-generation token: EOS,
            EOT/EOM and end-of-turn tokens, and BOS for a SentencePiece model without a chat template (llama2.c
            style, where BOS starts the next story). Prompt and generation speeds go to stderr at the end. --temp 0 (the default) is greedy and deterministic; with --temp > 0 the
            sampler uses top-k 40, top-p 0.95, min-p 0.05 unless given, seeded by --seed (default 42).
            --json prints {"promptIds", "ids", "text", timings} instead of streaming.
            """;

    private GenerateCommand() {}

    static int run(String[] argv, PrintStream out, PrintStream err) {
        String[] normalized = argv.clone();
        for (int i = 0; i < normalized.length; i++) {
            if (normalized[i].equals("-n")) {
                normalized[i] = "--n";
            }
        }
        Args args = Args.parse(
                "generate",
                normalized,
                Set.of(
                        "model",
                        "prompt",
                        "n",
                        "temp",
                        "seed",
                        "threads",
                        "kv",
                        "top-k",
                        "top-p",
                        "min-p",
                        "repeat-penalty"),
                Set.of("json", "help"));
        if (args.flag("help")) {
            out.print(USAGE);
            return 0;
        }
        if (!args.positional().isEmpty()) {
            throw new UsageException("generate: unexpected arguments " + args.positional());
        }
        Path path = Path.of(args.required("generate", "model"));
        String prompt = args.required("generate", "prompt");
        int n = args.intOption("generate", "n", 64, 0, 1 << 20);
        float temp = args.floatOption("generate", "temp", 0f, 0f, 100f);
        long seed = args.longOption("generate", "seed", 42);
        int threads = args.intOption(
                "generate", "threads", Math.max(1, Runtime.getRuntime().availableProcessors()), 1, 1024);
        KvCacheType kv = InspectCommand.kvType(args.option("kv"));
        SamplerParams params = temp == 0f
                ? SamplerParams.greedy()
                : new SamplerParams(
                        temp,
                        args.intOption("generate", "top-k", 40, 0, 1 << 24),
                        args.floatOption("generate", "top-p", 0.95f, 1e-6f, 1f),
                        args.floatOption("generate", "min-p", 0.05f, 0f, 0.999f),
                        args.floatOption("generate", "repeat-penalty", 1f, 1e-3f, 100f),
                        64,
                        seed);
        boolean json = args.flag("json");

        ModelSpec spec = ModelSpec.read(path);
        Tokenizer tokenizer = ModelTokenizer.of(spec.file(), "generate");
        int[] promptIds = tokenizer.encode(prompt, tokenizer.addsBos());
        if (promptIds.length == 0) {
            throw new UsageException("generate: the prompt encodes to no tokens and the model adds no BOS");
        }
        try (NativeModel model = NativeModel.open(spec);
                Generator generator = new Generator(model, threads, 512, kv)) {
            StreamingDecoder decoder = tokenizer.streamingDecoder();
            if (!json) {
                out.print(prompt);
                out.flush();
            }
            Generator.Result result = generator.generate(promptIds, n, params, tokenizer::isEndOfGeneration, token -> {
                if (!json && !tokenizer.isEndOfGeneration(token)) {
                    out.print(decoder.accept(token));
                    out.flush();
                }
                return true;
            });
            String text = tokenizer.decode(result.tokens());
            if (json) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("promptIds", result.promptTokens());
                r.put("ids", result.tokens());
                r.put("text", text);
                r.put("stopReason", result.stopReason());
                r.put("promptTokensPerSecond", round(result.promptTokensPerSecond()));
                r.put("decodeTokensPerSecond", round(result.decodeTokensPerSecond()));
                r.put("threads", threads);
                r.put("kvType", kv.toString());
                out.println(Json.pretty(r));
            } else {
                out.print(decoder.flush());
                out.println();
                out.flush();
            }
            err.printf(
                    Locale.ROOT,
                    "prompt: %d tokens in %.1f ms (%.1f tok/s); generation: %d tokens, %d decode steps in %.1f ms"
                            + " (%.1f tok/s); %d threads, KV %s%n",
                    result.promptTokens().length,
                    result.promptNanos() / 1e6,
                    result.promptTokensPerSecond(),
                    result.tokens().length,
                    result.decodeSteps(),
                    result.decodeNanos() / 1e6,
                    result.decodeTokensPerSecond(),
                    threads,
                    kv);
        }
        return 0;
    }

    private static double round(double v) {
        return Math.round(v * 10) / 10.0;
    }
}
