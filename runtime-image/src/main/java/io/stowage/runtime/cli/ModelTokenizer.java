package io.stowage.runtime.cli;

import io.stowage.placement.gguf.GgufArray;
import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufValue;
import io.stowage.runtime.tokenizer.Tokenizer;

/** Builds the tokenizer of a model from its parsed GGUF header, with a clear error when the header has none. */
final class ModelTokenizer {
    private ModelTokenizer() {}

    static Tokenizer of(GgufFile file, String where) {
        if (!file.has("tokenizer.ggml.model")) {
            throw new UsageException(where + ": the model has no tokenizer (tokenizer.ggml.model is missing)");
        }
        // Metadata values as plain Java objects: arrays as their Java arrays, scalars as String/Long/Double/Boolean.
        return Tokenizer.fromMetadata(key -> {
            GgufValue v = file.metadata().get(key);
            if (v == null) {
                return null;
            }
            return v.value() instanceof GgufArray a ? a.data() : v.value();
        });
    }
}
