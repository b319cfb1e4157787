package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;

/** The context one replica serves; with the model's shape it fixes the replica's KV-cache bytes. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ContextSpec {
    /** The static ceiling; the model's own trained context is checked once its header is read. */
    public static final int MAX_TOKENS_LIMIT = 1_048_576;

    @Min(1)
    @Max(MAX_TOKENS_LIMIT)
    @JsonPropertyDescription("Tokens per sequence (prompt + output); at most the model's trained context length.")
    private Integer maxTokens = 4096;

    @Min(1)
    @Max(4096)
    @JsonPropertyDescription("Sequences one replica runs at once; each gets maxTokens of KV cache.")
    private Integer maxSequences = 4;

    @JsonPropertyDescription("Element type of the KV cache: f16 (default), q8_0 or f32.")
    private KvCacheType kvCacheType = KvCacheType.f16;

    public ContextSpec() {}

    public ContextSpec(int maxTokens, int maxSequences, KvCacheType kvCacheType) {
        this.maxTokens = maxTokens;
        this.maxSequences = maxSequences;
        this.kvCacheType = kvCacheType;
    }

    public Integer getMaxTokens() {
        return maxTokens;
    }

    public void setMaxTokens(Integer maxTokens) {
        this.maxTokens = maxTokens;
    }

    public Integer getMaxSequences() {
        return maxSequences;
    }

    public void setMaxSequences(Integer maxSequences) {
        this.maxSequences = maxSequences;
    }

    public KvCacheType getKvCacheType() {
        return kvCacheType;
    }

    public void setKvCacheType(KvCacheType kvCacheType) {
        this.kvCacheType = kvCacheType;
    }

    public int tokens() {
        return maxTokens == null ? 4096 : maxTokens;
    }

    public int sequences() {
        return maxSequences == null ? 4 : maxSequences;
    }

    public KvCacheType kvType() {
        return kvCacheType == null ? KvCacheType.f16 : kvCacheType;
    }

    /** KV cache element types, named as users write them. */
    @SuppressWarnings("checkstyle:ConstantName")
    public enum KvCacheType {
        f16,
        q8_0,
        f32;

        /** Bytes per element; q8_0 stores 32 values in 34 bytes. */
        public double bytesPerElement() {
            return switch (this) {
                case f16 -> 2.0;
                case q8_0 -> 34.0 / 32.0;
                case f32 -> 4.0;
            };
        }
    }
}
