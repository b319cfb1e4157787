package io.stowage.runtime.host;

import io.stowage.runtime.engine.Sampler;
import io.stowage.runtime.engine.Sequence;
import io.stowage.runtime.tokenizer.StreamingDecoder;
import io.stowage.runtime.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One request in a replica's queue or running batch: its KV sequence, sampler and output state, touched only by the
 * device's scheduler thread (except {@link #cancel()}).
 */
public final class Job {
    enum State {
        QUEUED,
        PREFILL,
        DECODING,
        DONE
    }

    final GenerationRequest request;
    final TokenSink sink;
    final Replica replica;
    final long enqueuedNanos = System.nanoTime();
    /** KV blocks this job may take at most (prompt + max new tokens): admission reserves them up front. */
    final int blocks;

    State state = State.QUEUED;
    Sequence sequence;
    Sampler sampler;
    StreamingDecoder decoder;
    /** Prompt tokens already in the KV cache. */
    int prefilled;
    /** The last sampled token, fed to the next step. */
    int nextToken;

    int[] history;
    int historyLength;
    int generated;
    long firstTokenNanos;
    long lastTokenNanos;
    /** Text decoded but not yet sent, because it could be the start of a stop string. */
    private final StringBuilder pending = new StringBuilder();

    private volatile boolean cancelled;

    Job(GenerationRequest request, TokenSink sink, Replica replica, int blockTokens) {
        this.request = request;
        this.sink = sink;
        this.replica = replica;
        int total = request.prompt().length + request.maxNewTokens();
        this.blocks = (total + blockTokens - 1) / blockTokens;
    }

    /** Cancels the job (client gone): the scheduler frees its sequence before its next step. */
    public void cancel() {
        cancelled = true;
        replica.device().wake();
    }

    public boolean cancelled() {
        return cancelled;
    }

    int totalTokens() {
        return request.prompt().length + request.maxNewTokens();
    }

    void start(Sequence seq, Sampler s, Tokenizer tokenizer) {
        this.sequence = seq;
        this.sampler = s;
        this.decoder = tokenizer.streamingDecoder();
        this.history = Arrays.copyOf(request.prompt(), totalTokens());
        this.historyLength = request.prompt().length;
        this.state = State.PREFILL;
    }

    /**
     * Takes the sampled token: returns the finish reason when the job ends with it, else null. End-of-generation
     * tokens ({@link Tokenizer#isEndOfGeneration}: EOS, end-of-turn, BOS for llama2.c-style models) end it with
     * "stop" and add no text.
     */
    String accept(int token, Tokenizer tokenizer, double logprob, List<TokenSink.TopLogprob> top) {
        long now = System.nanoTime();
        if (generated == 0) {
            firstTokenNanos = now;
            sink.onStart();
        }
        lastTokenNanos = now;
        generated++;
        history[historyLength++] = token;
        nextToken = token;
        if (tokenizer.isEndOfGeneration(token)) {
            flushPending(token, logprob, top, tokenizer, true);
            return "stop";
        }
        pending.append(decoder.accept(token));
        String tokenText = request.topLogprobs() >= 0 ? piece(tokenizer, token) : null;
        int stopAt = firstStop();
        if (stopAt >= 0) {
            pending.setLength(stopAt);
            emit(pending.toString(), token, tokenText, logprob, top);
            pending.setLength(0);
            return "stop";
        }
        if (generated >= request.maxNewTokens()) {
            pending.append(decoder.flush());
            emit(pending.toString(), token, tokenText, logprob, top);
            pending.setLength(0);
            return "length";
        }
        int safe = pending.length() - holdBack();
        emit(pending.substring(0, safe), token, tokenText, logprob, top);
        pending.delete(0, safe);
        return null;
    }

    private void flushPending(
            int token, double logprob, List<TokenSink.TopLogprob> top, Tokenizer tokenizer, boolean eos) {
        pending.append(decoder.flush());
        String tokenText = request.topLogprobs() >= 0 ? (eos ? "" : piece(tokenizer, token)) : null;
        if (!pending.isEmpty() || request.topLogprobs() >= 0) {
            emit(pending.toString(), token, tokenText, logprob, top);
        }
        pending.setLength(0);
    }

    private void emit(String text, int token, String tokenText, double logprob, List<TokenSink.TopLogprob> top) {
        sink.onPiece(new TokenSink.Piece(text, token, tokenText, logprob, top == null ? List.of() : top));
    }

    private int firstStop() {
        int best = -1;
        for (String s : request.stop()) {
            int i = pending.indexOf(s);
            if (i >= 0 && (best < 0 || i < best)) {
                best = i;
            }
        }
        return best;
    }

    /** The longest tail of the pending text that is a proper prefix of some stop string. */
    private int holdBack() {
        int keep = 0;
        String text = pending.toString();
        for (String s : request.stop()) {
            int max = Math.min(s.length() - 1, pending.length());
            for (int k = max; k > keep; k--) {
                if (text.regionMatches(text.length() - k, s, 0, k)) {
                    keep = k;
                    break;
                }
            }
        }
        return keep;
    }

    int[] recent(int n, int[] buf) {
        int count = Math.min(n, historyLength);
        System.arraycopy(history, historyLength - count, buf, 0, count);
        return buf;
    }

    /** Frees the job's native state (sequence blocks back to the pool); safe to call twice. */
    void release() {
        if (sequence != null) {
            sequence.close();
            sequence = null;
        }
        if (sampler != null) {
            sampler.close();
            sampler = null;
        }
        state = State.DONE;
    }

    static List<TokenSink.TopLogprob> topOf(float[] logits, int offset, int vocab, int n, Tokenizer tokenizer) {
        List<TokenSink.TopLogprob> out = new ArrayList<>(n);
        if (n <= 0) {
            return out;
        }
        double lse = logSumExp(logits, offset, vocab);
        int[] best = new int[n];
        Arrays.fill(best, -1);
        for (int i = 0; i < vocab; i++) {
            float v = logits[offset + i];
            for (int k = 0; k < n; k++) {
                if (best[k] < 0 || v > logits[offset + best[k]]) {
                    System.arraycopy(best, k, best, k + 1, n - k - 1);
                    best[k] = i;
                    break;
                }
            }
        }
        for (int id : best) {
            if (id >= 0) {
                out.add(new TokenSink.TopLogprob(piece(tokenizer, id), logits[offset + id] - lse));
            }
        }
        return out;
    }

    /** One token's own text as it reads inside a continuation (with its leading space, unlike decode of it alone). */
    static String piece(Tokenizer tokenizer, int id) {
        StreamingDecoder d = tokenizer.streamingDecoder();
        return d.accept(id) + d.flush();
    }

    static double logprob(float[] logits, int offset, int vocab, int token) {
        return logits[offset + token] - logSumExp(logits, offset, vocab);
    }

    private static double logSumExp(float[] logits, int offset, int vocab) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            sum += Math.exp(logits[offset + i] - max);
        }
        return max + Math.log(sum);
    }
}
