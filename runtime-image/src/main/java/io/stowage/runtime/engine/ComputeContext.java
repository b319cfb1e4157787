package io.stowage.runtime.engine;

import java.util.IdentityHashMap;
import java.util.Map;

/**
 * A compute context of one model: a thread pool and the workspace for one forward step of up to
 * {@link #maxBatchTokens()} tokens, allocated once.
 *
 * <p>Thread-safety: one step at a time. {@link #decode} is synchronized, so concurrent callers queue; a host runs
 * its steps from one scheduler thread anyway.
 */
public final class ComputeContext extends NativeHandle {
    private final NativeModel model;
    private final int threads;
    private final int maxBatchTokens;
    private final int maxLogitRows;
    private final int vocabSize;

    ComputeContext(long pointer, NativeModel model, int threads, int maxBatchTokens, int maxLogitRows) {
        super(pointer, model);
        this.model = model;
        this.threads = threads;
        this.maxBatchTokens = maxBatchTokens;
        this.maxLogitRows = maxLogitRows;
        this.vocabSize = model.vocabSize();
    }

    @Override
    void free(long pointer) {
        NativeEngine.contextFree(pointer);
    }

    @Override
    String describe() {
        return "compute context (" + (threads > 0 ? threads + " threads, " : "") + maxBatchTokens + " tokens) of "
                + model.describe();
    }

    public NativeModel model() {
        return model;
    }

    /** Threads of its private CPU backend; 0 for a context on a shared {@link Backend}. */
    public int threads() {
        return threads;
    }

    public int maxBatchTokens() {
        return maxBatchTokens;
    }

    public int maxLogitRows() {
        return maxLogitRows;
    }

    /**
     * The memory contract's A_m of this context: what it needs of its backend's shared workspace (which is the largest
     * A_m of the contexts on the backend).
     */
    public long workspaceBytes() {
        long p = acquire();
        try {
            return NativeEngine.contextWorkspaceBytes(p);
        } finally {
            release();
        }
    }

    /**
     * One forward step: token i is appended to seqs[i] (the tokens of one sequence in order); for each token with
     * wantLogits[i] its logits row is written, in order, to logitsOut (rows × vocabSize floats).
     *
     * @throws BudgetExceededException when a sequence needs a KV block and its pool has none left, or grows past
     *     its maxTokens
     */
    public synchronized void decode(int[] tokens, Sequence[] seqs, boolean[] wantLogits, float[] logitsOut) {
        int n = tokens.length;
        if (n == 0 || n > maxBatchTokens) {
            throw new IllegalArgumentException(
                    "decode: " + n + " tokens; a step of this context takes 1.." + maxBatchTokens);
        }
        if (seqs.length != n || wantLogits.length != n) {
            throw new IllegalArgumentException("decode: " + n + " tokens but " + seqs.length + " sequences and "
                    + wantLogits.length + " wantLogits flags (one each per token)");
        }
        int rows = 0;
        byte[] want = new byte[n];
        for (int i = 0; i < n; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocabSize) {
                throw new IllegalArgumentException("decode: token " + i + " is id " + tokens[i]
                        + ", outside the vocabulary 0.." + (vocabSize - 1));
            }
            if (seqs[i] == null) {
                throw new IllegalArgumentException("decode: sequence " + i + " is null");
            }
            if (seqs[i].pool().model() != model) {
                throw new IllegalArgumentException("decode: sequence " + i + " belongs to "
                        + seqs[i].pool().model().describe() + ", not to " + model.describe());
            }
            if (wantLogits[i]) {
                want[i] = 1;
                rows++;
            }
        }
        if (rows > maxLogitRows) {
            throw new IllegalArgumentException(
                    "decode: " + rows + " logit rows asked; this context holds at most " + maxLogitRows);
        }
        long need = (long) rows * vocabSize;
        if (logitsOut == null ? need > 0 : logitsOut.length < need) {
            throw new IllegalArgumentException("decode: logitsOut holds "
                    + (logitsOut == null ? 0 : logitsOut.length) + " floats but " + rows + " rows × " + vocabSize
                    + " = " + need + " are written");
        }
        Map<Sequence, Long> pointers = new IdentityHashMap<>();
        long ctx = acquire();
        try {
            long[] seqPointers = new long[n];
            try {
                for (int i = 0; i < n; i++) {
                    Long p = pointers.get(seqs[i]);
                    if (p == null) {
                        p = seqs[i].acquire();
                        pointers.put(seqs[i], p);
                    }
                    seqPointers[i] = p;
                }
                NativeEngine.decode(ctx, n, tokens, seqPointers, want, logitsOut, vocabSize);
            } finally {
                for (Sequence s : pointers.keySet()) {
                    s.release();
                }
            }
        } finally {
            release();
        }
    }
}
