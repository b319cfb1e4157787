package io.stowage.runtime.host;

import io.stowage.runtime.engine.SamplerParams;
import java.util.List;

/**
 * What one OpenAI request asks the scheduler to generate, already tokenized and validated.
 *
 * @param maxNewTokens tokens to generate at most (prompt + maxNewTokens fits the replica's maxTokens)
 * @param stop strings that end the generation; the text from the first match on is not returned
 * @param topLogprobs -1: no logprobs; 0..20: the chosen token's logprob and that many alternatives
 */
public record GenerationRequest(
        int[] prompt, int maxNewTokens, SamplerParams sampler, List<String> stop, int topLogprobs) {
    public GenerationRequest {
        stop = stop == null ? List.of() : List.copyOf(stop);
    }
}
