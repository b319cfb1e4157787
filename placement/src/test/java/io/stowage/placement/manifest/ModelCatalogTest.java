package io.stowage.placement.manifest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.placement.memory.ModelShape;
import org.junit.jupiter.api.Test;

class ModelCatalogTest {

    private static final String ENTRY = """
            models:
              hf://org/repo/m.gguf:
                architecture: llama
                layers: 32
                heads: 32
                kvHeads: 8
                keyLength: 128
                valueLength: 128
                embedding: 4096
                feedForward: 14336
                vocab: 128256
                contextLength: 131072
                weightBytes: 4920734720
                quantization: Q4_K_M
                parameters: 8030261248
            """;

    @Test
    void readsHeaderSummariesKeyedByUri() {
        ModelCatalog c = ModelCatalog.parse("models.yaml", ENTRY);
        CatalogEntry e = c.get("hf://org/repo/m.gguf");
        assertThat(e.shape())
                .isEqualTo(new ModelShape("llama", 32, 4096, 14336, 32, 8, 128, 128, 128256, 131072, 4_920_734_720L));
        assertThat(e.quantization()).isEqualTo("Q4_K_M");
        assertThat(e.parameters()).isEqualTo(8_030_261_248L);
        assertThat(c.get("hf://other")).isNull();
    }

    @Test
    void missingOrBadFieldsAreNamed() {
        assertThatThrownBy(() -> ModelCatalog.parse("models.yaml", ENTRY.replace("    vocab: 128256\n", "")))
                .hasMessage("models.yaml doc 1: models[hf://org/repo/m.gguf].vocab: is required");
        assertThatThrownBy(() -> ModelCatalog.parse("models.yaml", ENTRY.replace("kvHeads: 8", "kvHeads: 7")))
                .hasMessage("models.yaml doc 1: models[hf://org/repo/m.gguf].kvHeads: must divide heads (32), got 7");
        assertThatThrownBy(() -> ModelCatalog.parse("models.yaml", ENTRY.replace("layers: 32", "layers: 0")))
                .hasMessage("models.yaml doc 1: models[hf://org/repo/m.gguf].layers: must be >= 1, got 0");
    }
}
