package io.stowage.placement.memory;

/**
 * The hyperparameters and weight bytes the memory model needs, as read from a GGUF header (see
 * {@code io.stowage.placement.gguf.ModelDescription#shape()}) or given by hand for known shapes.
 *
 * @param layers n_layer (block count)
 * @param embeddingLength n_embd
 * @param feedForwardLength n_ff
 * @param headCount n_head (query heads)
 * @param headCountKv n_head_kv (grouped-query attention: KV heads only)
 * @param keyLength head dimension of K (and Q)
 * @param valueLength head dimension of V
 * @param vocabSize rows of the output head
 * @param contextLength the model's trained context (upper bound for maxTokens)
 * @param weightBytes W_m: exact bytes of all tensors as stored
 */
public record ModelShape(
        String architecture,
        int layers,
        int embeddingLength,
        int feedForwardLength,
        int headCount,
        int headCountKv,
        int keyLength,
        int valueLength,
        int vocabSize,
        long contextLength,
        long weightBytes) {

    public ModelShape {
        if (layers <= 0 || embeddingLength <= 0 || headCount <= 0 || headCountKv <= 0) {
            throw new IllegalArgumentException("model shape: layers, embedding and head counts must be > 0");
        }
        if (keyLength <= 0 || valueLength <= 0 || vocabSize <= 0 || feedForwardLength <= 0) {
            throw new IllegalArgumentException("model shape: head dims, vocabulary and n_ff must be > 0");
        }
        if (weightBytes < 0 || contextLength < 0) {
            throw new IllegalArgumentException("model shape: weight bytes and context must be >= 0");
        }
    }
}
