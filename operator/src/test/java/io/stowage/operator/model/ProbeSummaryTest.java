package io.stowage.operator.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.stowage.hostapi.ModelHeader;
import io.stowage.placement.gguf.GgufReader;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Objects;
import org.junit.jupiter.api.Test;

/**
 * The probe pod's termination message as the runtime writes it ({@code probe/stories260K-q8_0.header.json}, which
 * the runtime's MainTest checks byte for byte against its own {@code inspect --json --output}), read by the operator.
 */
class ProbeSummaryTest {
    @Test
    void theRuntimesSummaryReadsAsTheHeaderOfTheModel() throws Exception {
        String message = resource("/probe/stories260K-q8_0.header.json");

        ModelHeader h = ModelResolver.readSummary(message);

        assertThat(h.architecture()).isEqualTo("llama");
        assertThat(h.quantization()).isEqualTo("Q8_0");
        assertThat(h.shape().layers()).isEqualTo(5);
        assertThat(h.shape().headCount()).isEqualTo(8);
        assertThat(h.shape().headCountKv()).isEqualTo(4);
        assertThat(h.shape().vocabSize()).isEqualTo(512);
        assertThat(h.shape().contextLength()).isEqualTo(512);
        // The same facts the operator's own header reader gets from the file's bytes (the http(s) path).
        byte[] gguf;
        try (InputStream in = ProbeSummaryTest.class.getResourceAsStream("/models/stories260K-q8_0.gguf")) {
            gguf = Objects.requireNonNull(in).readAllBytes();
        }
        assertThat(h).isEqualTo(ModelHeader.from(GgufReader.readBytes(gguf)));
    }

    @Test
    void anEmptyOrForeignMessageIsRefused() {
        assertThatThrownBy(() -> ModelResolver.readSummary("")).hasMessageContaining("empty summary");
        assertThatThrownBy(() -> ModelResolver.readSummary("{\"architecture\": \"llama\"}"))
                .isInstanceOf(Exception.class);
        assertThatThrownBy(() -> ModelResolver.readSummary("inspect: /source/m.gguf is not a valid GGUF file"))
                .isInstanceOf(Exception.class);
    }

    private static String resource(String name) throws Exception {
        try (InputStream in = ProbeSummaryTest.class.getResourceAsStream(name)) {
            return new String(Objects.requireNonNull(in, name).readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
