package io.stowage.runtime.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufReader;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * A benchmark, not a test: load time of each test vocabulary and encode/decode throughput on
 * the vector texts (prose, code, many scripts) concatenated to about 1.2 MB. Run from the
 * repository root:
 *
 * <pre>
 * ./mvnw -B -ntp -o -q -pl runtime-image -am test-compile dependency:build-classpath \
 *     -Dmdep.outputFile=target/test-classpath.txt
 * java -cp runtime-image/target/test-classes:runtime-image/target/classes:$(cat runtime-image/target/test-classpath.txt) \
 *     io.stowage.runtime.tokenizer.TokenizerBenchmark
 * </pre>
 */
public final class TokenizerBenchmark {
    private TokenizerBenchmark() {}

    public static void main(String[] args) {
        StringBuilder corpus = new StringBuilder();
        for (JsonNode v : TestTokenizers.jsonLines("/tokenizers/llama3/vectors.jsonl")) {
            corpus.append(v.get("text").asText()).append('\n');
        }
        String base = corpus.toString();
        String text = base.repeat(Math.max(1, (1 << 20) / base.length()));
        int bytes = text.getBytes(StandardCharsets.UTF_8).length;
        for (String gguf : List.of(TestTokenizers.LLAMA3, TestTokenizers.QWEN3, TestTokenizers.LLAMA_SPM)) {
            byte[] file = TestTokenizers.bytes(gguf);
            long t0 = System.nanoTime();
            GgufFile parsed = GgufReader.readBytes(file);
            long t1 = System.nanoTime();
            Tokenizer t = Tokenizer.fromGguf(parsed);
            long t2 = System.nanoTime();
            int[] ids = null;
            for (int i = 0; i < 3; i++) {
                ids = t.encode(text, false); // warm-up
            }
            int rounds = 5;
            long e0 = System.nanoTime();
            for (int i = 0; i < rounds; i++) {
                ids = t.encode(text, false);
            }
            long e1 = System.nanoTime();
            for (int i = 0; i < rounds; i++) {
                t.decode(ids);
            }
            long e2 = System.nanoTime();
            double coldSec = Double.NaN;
            if (t instanceof BytePairTokenizer bpe) {
                long c0 = System.nanoTime();
                for (int i = 0; i < rounds; i++) {
                    bpe.clearCache();
                    t.encode(text, false);
                }
                coldSec = (System.nanoTime() - c0) / 1e9 / rounds;
            }
            double encSec = (e1 - e0) / 1e9 / rounds;
            double decSec = (e2 - e1) / 1e9 / rounds;
            System.out.printf(
                    "%-55s parse %5.0f ms  build %5.0f ms  encode %5.2f MB/s (%,.0f tokens/s; %s without the word cache)  decode %,.0f tokens/s  [%,d bytes -> %,d tokens]%n",
                    gguf,
                    (t1 - t0) / 1e6,
                    (t2 - t1) / 1e6,
                    bytes / encSec / 1e6,
                    ids.length / encSec,
                    Double.isNaN(coldSec) ? "n/a" : String.format("%.2f MB/s", bytes / coldSec / 1e6),
                    ids.length / decSec,
                    bytes,
                    ids.length);
        }
    }
}
