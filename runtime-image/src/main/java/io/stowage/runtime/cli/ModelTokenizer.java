package io.stowage.runtime.cli;

import io.stowage.placement.gguf.GgufFile;
import io.stowage.runtime.tokenizer.Tokenizer;

/** Builds the tokenizer of a model from its parsed GGUF header, with a clear error when the header has none. */
final class ModelTokenizer {
    private ModelTokenizer() {}

    static Tokenizer of(GgufFile file, String where) {
        if (!file.has("tokenizer.ggml.model")) {
            throw new UsageException(where + ": the model has no tokenizer (tokenizer.ggml.model is missing)");
        }
        return Tokenizer.fromGguf(file);
    }
}
