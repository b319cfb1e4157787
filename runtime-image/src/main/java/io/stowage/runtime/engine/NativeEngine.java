package io.stowage.runtime.engine;

import io.stowage.placement.memory.KvCacheType;

/**
 * The native methods of the inference core, one per C API call (implemented in native/src/jni/stowage_jni.cpp).
 *
 * <p>Handles are raw pointers; only the handle classes of this package call these, after checking that the
 * handle is open. Text crosses as UTF-8 bytes, bulk data as arrays. A failed call throws the exception that
 * {@link NativeErrors#create} builds for the status.
 */
final class NativeEngine {
    /** Layout of the hparams int array: arch, n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim_k, head_dim_v,
     * n_vocab, n_ctx_train, rope_dim, rope_type. */
    static final int HPARAM_INTS = 12;
    /** Layout of the hparams float array: rope_freq_base, rms_eps. */
    static final int HPARAM_FLOATS = 2;
    /** Per tensor in the int array: ggml type, n_dims. */
    static final int TENSOR_INTS = 2;
    /** Per tensor in the long array: ne[0..3], absolute offset, byte size. */
    static final int TENSOR_LONGS = 6;

    private NativeEngine() {}

    static native String version();

    static native String cpuFeatures();

    /** names: the tensor names as NUL-terminated UTF-8, back to back. */
    static native long modelInit(
            byte[] path, int[] hparamInts, float[] hparamFloats, byte[] names, int[] tensorInts, long[] tensorLongs);

    static native long modelInitFile(byte[] path);

    static native void modelFree(long model);

    static native void modelHparams(long model, int[] hparamInts, float[] hparamFloats);

    static native long modelWeightBytes(long model);

    static native long kvBytesPerToken(long model, int kvType);

    /**
     * The ggml type id the C API takes for a KV cache type (GGML_TYPE_F32 0, F16 1, Q8_0 8). The type itself is
     * placement's {@link KvCacheType}, shared with the memory model, the manifests and the operator.
     */
    static int ggmlId(KvCacheType type) {
        return switch (type) {
            case F32 -> 0;
            case F16 -> 1;
            case Q8_0 -> 8;
        };
    }

    static native long kvPoolInit(long model, int kvType, long budgetBytes);

    static native void kvPoolFree(long pool);

    static native long kvPoolBytes(long pool);

    static native long kvPoolUsedBytes(long pool);

    static native long seqInit(long pool, int maxTokens);

    static native void seqFree(long seq);

    static native int seqLength(long seq);

    static native void seqTruncate(long seq, int length);

    static native long contextInit(long model, int threads, int maxBatchTokens, int maxLogitRows);

    /** kind: 0 cpu, 1 cuda (stw_backend_kind). */
    /** stw_backend_kind_built: whether this library carries the backend of that kind. */
    static native boolean backendKindBuilt(int kind);

    static native long backendInit(int kind, int ordinal, int threads);

    static native long backendInitUuid(byte[] uuid, int threads);

    static native void backendFree(long backend);

    /** numbers receives kind, ordinal, total bytes; returns {name, uuid}. */
    static native String[] backendDeviceInfo(long backend, long[] numbers);

    /** out receives free bytes, total bytes. */
    static native void backendMemoryInfo(long backend, long[] out);

    static native long backendAllocatedBytes(long backend);

    static native long backendWorkspaceBytes(long backend);

    /** use: 0 weight, 1 KV. */
    static native boolean backendSupportsType(long backend, int ggmlType, int use);

    /** listener may be null. */
    static native void modelLoad(long model, long backend, UploadProgress listener);

    static native void modelUnload(long model, long backend);

    static native long modelDeviceBytes(long model, long backend);

    static native long kvPoolInitOn(long backend, long model, int kvType, long budgetBytes);

    static native long contextInitOn(long backend, long model, int maxBatchTokens, int maxLogitRows);

    static native void contextFree(long context);

    static native long contextWorkspaceBytes(long context);

    /** wantLogits: 0 or 1 per token; logitsOut: (rows with 1) × nVocab floats. */
    static native void decode(
            long context, int nTokens, int[] tokens, long[] seqs, byte[] wantLogits, float[] logitsOut, int nVocab);

    /** floats: temperature, top_p, min_p, repeat_penalty. */
    static native long samplerInit(float[] floats, int topK, int repeatLastN, long seed, int nVocab);

    static native void samplerFree(long sampler);

    static native int samplerSample(long sampler, float[] logits, int offset, int nVocab, int[] recent, int nRecent);
}
