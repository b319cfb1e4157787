package io.stowage.runtime.engine;

import io.stowage.placement.memory.KvCacheType;
import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * Runs one prompt to a continuation on a model: batched prefill, then one token per step from a sampler, each
 * token streamed to a listener as it is produced, with prompt and decode timings.
 *
 * <p>Thread-safety: one generation at a time per generator (generate is synchronized); use one generator per
 * thread for parallel single-sequence runs, or the server's batching scheduler for shared steps.
 */
public final class Generator implements AutoCloseable {
    /** Called with each generated token, in order; returning false stops the generation after that token. */
    @FunctionalInterface
    public interface TokenListener {
        boolean onToken(int token);
    }

    /**
     * What one generation did.
     *
     * @param stopReason "length" (maxNewTokens reached), "stop" (a stop token), "listener" (the listener said stop)
     * @param promptNanos wall time of the prefill steps (including the first token's logits)
     * @param decodeNanos wall time of the decode steps after the first generated token
     * @param decodeSteps decode steps timed in decodeNanos (one per generated token after the first)
     */
    public record Result(
            int[] promptTokens,
            int[] tokens,
            String stopReason,
            long promptNanos,
            long decodeNanos,
            int decodeSteps,
            long kvBytes,
            long workspaceBytes) {
        public double promptTokensPerSecond() {
            return promptNanos == 0 ? 0 : promptTokens.length * 1e9 / promptNanos;
        }

        public double decodeTokensPerSecond() {
            return decodeNanos == 0 ? 0 : decodeSteps * 1e9 / decodeNanos;
        }
    }

    private final NativeModel model;
    private final ComputeContext context;
    private final KvCacheType kvType;

    /** A generator with its own compute context of threads threads and prefill chunks of up to batchTokens. */
    public Generator(NativeModel model, int threads, int batchTokens, KvCacheType kvType) {
        this.model = model;
        this.kvType = kvType;
        this.context = model.newContext(threads, batchTokens, 1);
    }

    public Generator(NativeModel model, int threads) {
        this(model, threads, 512, KvCacheType.F16);
    }

    public ComputeContext context() {
        return context;
    }

    /**
     * Generates up to maxNewTokens tokens after prompt.
     *
     * @param stop tokens that end the generation (included in the result, e.g. EOS); null for none
     */
    public synchronized Result generate(
            int[] prompt, int maxNewTokens, SamplerParams params, IntPredicate stop, TokenListener listener) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("prompt must hold at least one token (e.g. BOS)");
        }
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("maxNewTokens must be >= 0, got " + maxNewTokens);
        }
        long total = (long) prompt.length + maxNewTokens;
        if (total > model.contextLength()) {
            throw new IllegalArgumentException("prompt (" + prompt.length + " tokens) + " + maxNewTokens
                    + " new tokens = " + total + " exceeds the model's context of " + model.contextLength()
                    + " tokens");
        }
        int vocab = model.vocabSize();
        long blocks = (total + KvPool.BLOCK_TOKENS - 1) / KvPool.BLOCK_TOKENS;
        long budget = model.kvBytesPerToken(kvType) * blocks * KvPool.BLOCK_TOKENS;
        int[] out = new int[maxNewTokens];
        int produced = 0;
        String reason = "length";
        float[] logits = new float[vocab];
        try (KvPool pool = model.newKvPool(kvType, budget);
                Sequence seq = pool.newSequence((int) total);
                Sampler sampler = Sampler.create(params, vocab)) {
            long t0 = System.nanoTime();
            int chunk = context.maxBatchTokens();
            for (int start = 0; start < prompt.length; start += chunk) {
                int n = Math.min(chunk, prompt.length - start);
                int[] tokens = Arrays.copyOfRange(prompt, start, start + n);
                Sequence[] seqs = new Sequence[n];
                Arrays.fill(seqs, seq);
                boolean[] want = new boolean[n];
                want[n - 1] = start + n == prompt.length;
                context.decode(tokens, seqs, want, logits);
            }
            long promptNanos = System.nanoTime() - t0;
            long decodeNanos = 0;
            int steps = 0;
            int[] recent = new int[Math.max(1, params.repeatLastN())];
            int[] history = Arrays.copyOf(prompt, prompt.length + maxNewTokens);
            int historyLength = prompt.length;
            Sequence[] one = {seq};
            boolean[] wantOne = {true};
            int[] tokenOne = new int[1];
            while (produced < maxNewTokens) {
                int nRecent = Math.min(params.repeatLastN(), historyLength);
                System.arraycopy(history, historyLength - nRecent, recent, 0, nRecent);
                int token = sampler.sample(logits, 0, recent, nRecent);
                out[produced++] = token;
                history[historyLength++] = token;
                boolean go = listener == null || listener.onToken(token);
                if (stop != null && stop.test(token)) {
                    reason = "stop";
                    break;
                }
                if (!go) {
                    reason = "listener";
                    break;
                }
                if (produced == maxNewTokens) {
                    break;
                }
                tokenOne[0] = token;
                long s = System.nanoTime();
                context.decode(tokenOne, one, wantOne, logits);
                decodeNanos += System.nanoTime() - s;
                steps++;
            }
            return new Result(
                    prompt.clone(),
                    Arrays.copyOf(out, produced),
                    reason,
                    promptNanos,
                    decodeNanos,
                    steps,
                    pool.allocatedBytes(),
                    context.workspaceBytes());
        }
    }

    @Override
    public void close() {
        context.close();
    }
}
