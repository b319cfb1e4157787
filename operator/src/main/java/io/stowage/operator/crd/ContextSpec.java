package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;

/**
 * The context one replica serves; with the model's shape it fixes the replica's KV-cache bytes. Unset fields stay
 * null here: their defaults are applied in one place for the operator, plan and local mode
 * ({@code io.stowage.placement.manifest.PlannerInput}).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ContextSpec {
    /** The static ceiling; the model's own trained context is checked once its header is read. */
    public static final int MAX_TOKENS_LIMIT = 1_048_576;

    @Min(1)
    @Max(MAX_TOKENS_LIMIT)
    @JsonPropertyDescription("Tokens per sequence (prompt + output); at most the model's trained context length."
            + " Default 4096, capped at the model's context.")
    private Integer maxTokens;

    @Min(1)
    @Max(4096)
    @JsonPropertyDescription("Sequences one replica runs at once; each gets maxTokens of KV cache. Default 4.")
    private Integer maxSequences;

    @JsonPropertyDescription("Element type of the KV cache: f16 (default), q8_0 or f32.")
    private KvCacheType kvCacheType;

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

    /**
     * KV cache element types, named as users write them: the CRD schema's enum. The type itself, with its row
     * sizes, is {@code io.stowage.placement.memory.KvCacheType}; placement has no Jackson annotations, so the CRD
     * generator cannot take the enum from there.
     */
    @SuppressWarnings("checkstyle:ConstantName")
    public enum KvCacheType {
        f16,
        q8_0,
        f32
    }
}
