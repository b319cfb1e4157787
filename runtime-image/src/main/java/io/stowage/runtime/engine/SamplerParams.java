package io.stowage.runtime.engine;

/**
 * How a {@link Sampler} picks the next token.
 *
 * @param temperature 0 means greedy (ties to the lowest id)
 * @param topK keep the k most likely tokens; 0 keeps all
 * @param topP keep the smallest set whose probability reaches p; 1 keeps all
 * @param minP drop tokens below minP × the top probability; 0 keeps all
 * @param repeatPenalty divide positive (multiply negative) logits of recent tokens; 1 is off
 * @param repeatLastN how many recent tokens the penalty looks at
 */
public record SamplerParams(
        float temperature, int topK, float topP, float minP, float repeatPenalty, int repeatLastN, long seed) {
    public SamplerParams {
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("topK must be >= 0 (0 = off), got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
        }
        if (!(minP >= 0 && minP < 1)) {
            throw new IllegalArgumentException("minP must be in [0, 1), got " + minP);
        }
        if (!(repeatPenalty > 0) || Float.isInfinite(repeatPenalty)) {
            throw new IllegalArgumentException(
                    "repeatPenalty must be a finite number > 0 (1 = off), got " + repeatPenalty);
        }
        if (repeatLastN < 0) {
            throw new IllegalArgumentException("repeatLastN must be >= 0, got " + repeatLastN);
        }
    }

    /** Greedy decoding: always the most likely token. */
    public static SamplerParams greedy() {
        return new SamplerParams(0f, 0, 1f, 0f, 1f, 0, 0);
    }

    /** Temperature sampling with llama.cpp's usual filters (top-k 40, top-p 0.95, min-p 0.05). */
    public static SamplerParams of(float temperature, long seed) {
        return new SamplerParams(temperature, 40, 0.95f, 0.05f, 1f, 64, seed);
    }
}
