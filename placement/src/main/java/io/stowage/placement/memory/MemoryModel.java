package io.stowage.placement.memory;

import io.stowage.placement.plan.Deployment;
import io.stowage.placement.plan.DeviceKind;
import io.stowage.placement.plan.DeviceRequest;
import io.stowage.placement.plan.ModelRef;
import io.stowage.placement.plan.Toleration;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The memory contract between the planner and the native engine: weights, KV budget, workspace and
 * host overhead of one deployment, computed from its model's header.
 *
 * <p>Both sides implement exactly these formulas (n = GGUF hyperparameters, B prefill chunk, L logit
 * rows, blk = kvBlockTokens):
 *
 * <pre>
 * kvBytesPerToken = n_layer · (rowBytes(n_head_kv·dk) + rowBytes(n_head_kv·dv))
 * K_r = kvBytesPerToken · ceil(maxTokens / blk)·blk · maxSequences
 * A_m = 4·B·(2·n_embd + n_head·dk + n_head·dv + n_head_kv·(dk + dv) + 2·n_ff)
 *     + 4·L·n_vocab + B·ceil(max(n_embd, n_head·dv, n_ff) / 32)·36
 * W_m = the tensor bytes as stored in the GGUF
 * </pre>
 */
public final class MemoryModel {

    /** Activations are quantized for the integer dot products in blocks of 32 values, 36 bytes each. */
    static final int ACTIVATION_BLOCK_VALUES = 32;

    static final int ACTIVATION_BLOCK_BYTES = 36;

    private final MemoryParameters parameters;

    public MemoryModel(MemoryParameters parameters) {
        this.parameters = Objects.requireNonNull(parameters, "parameters");
    }

    /** A memory model with {@link MemoryParameters#defaults()}. */
    public static MemoryModel withDefaults() {
        return new MemoryModel(MemoryParameters.defaults());
    }

    public MemoryParameters parameters() {
        return parameters;
    }

    /** Bytes of one token slot of one sequence, K and V over all layers. */
    public long kvBytesPerToken(ModelShape shape, KvCacheType kvType) {
        long kWidth = (long) shape.headCountKv() * shape.keyLength();
        long vWidth = (long) shape.headCountKv() * shape.valueLength();
        return Math.multiplyExact(shape.layers(), Math.addExact(kvType.rowBytes(kWidth), kvType.rowBytes(vWidth)));
    }

    /** maxTokens rounded up to whole KV blocks. */
    public long slotsFor(long maxTokens) {
        long blk = parameters.kvBlockTokens();
        return Math.multiplyExact(Math.ceilDiv(maxTokens, blk), blk);
    }

    /** A_m: the float buffers, logits and quantized activations of the model's largest step. */
    public long workspaceBytes(ModelShape s) {
        long b = parameters.prefillChunkTokens();
        long l = parameters.logitRows();
        long widths = 2L * s.embeddingLength()
                + (long) s.headCount() * s.keyLength()
                + (long) s.headCount() * s.valueLength()
                + (long) s.headCountKv() * (s.keyLength() + s.valueLength())
                + 2L * s.feedForwardLength();
        long widest =
                Math.max(s.embeddingLength(), Math.max((long) s.headCount() * s.valueLength(), s.feedForwardLength()));
        long floats = Math.multiplyExact(4 * b, widths);
        long logits = Math.multiplyExact(4 * l, (long) s.vocabSize());
        long quantized = Math.multiplyExact(b, Math.ceilDiv(widest, ACTIVATION_BLOCK_VALUES) * ACTIVATION_BLOCK_BYTES);
        return withSlack(Math.addExact(Math.addExact(floats, logits), quantized));
    }

    /** O_host of a device of this kind. */
    public long hostOverheadBytes(DeviceKind kind) {
        return kind == DeviceKind.CPU ? parameters.hostOverheadCpuBytes() : parameters.hostOverheadGpuBytes();
    }

    /**
     * The breakdown of one replica serving up to {@code maxSequences} sequences of up to {@code
     * maxTokens} tokens each.
     *
     * @throws IllegalArgumentException when maxTokens or maxSequences is out of range, or when the KV
     *     type does not suit the model's widths
     */
    public MemoryBreakdown estimate(
            ModelShape shape, long maxTokens, int maxSequences, KvCacheType kvType, DeviceKind kind) {
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(kvType, "kvType");
        Objects.requireNonNull(kind, "kind");
        if (maxTokens <= 0) {
            throw new IllegalArgumentException("maxTokens must be > 0, got " + maxTokens);
        }
        if (shape.contextLength() > 0 && maxTokens > shape.contextLength()) {
            throw new IllegalArgumentException("maxTokens " + maxTokens + " exceeds the model's context length "
                    + shape.contextLength() + " (" + shape.architecture() + ")");
        }
        if (maxSequences <= 0) {
            throw new IllegalArgumentException("maxSequences must be > 0, got " + maxSequences);
        }
        long perToken = kvBytesPerToken(shape, kvType);
        long kv = withSlack(Math.multiplyExact(Math.multiplyExact(perToken, slotsFor(maxTokens)), maxSequences));
        return new MemoryBreakdown(shape.weightBytes(), perToken, kv, workspaceBytes(shape), hostOverheadBytes(kind));
    }

    /** The planner's view of a model: W_m and A_m keyed by its content digest. */
    public static ModelRef modelRef(String digest, MemoryBreakdown breakdown) {
        return new ModelRef(digest, breakdown.weightBytes(), breakdown.workspaceBytes());
    }

    /** The planner's view of a deployment whose replicas each cost {@code breakdown}. */
    public static Deployment deployment(
            String id,
            String digest,
            MemoryBreakdown breakdown,
            int replicas,
            int priority,
            Map<String, String> nodeSelector,
            List<Toleration> tolerations,
            int maxReplicasPerNode,
            DeviceRequest device,
            double computeShare) {
        return new Deployment(
                id,
                modelRef(digest, breakdown),
                breakdown.kvBytesPerReplica(),
                replicas,
                priority,
                nodeSelector,
                tolerations,
                maxReplicasPerNode,
                device,
                computeShare);
    }

    private long withSlack(long bytes) {
        double slack = parameters.allocatorSlackFraction();
        if (slack == 0) {
            return bytes;
        }
        return Math.addExact(bytes, (long) Math.ceil(bytes * slack));
    }
}
