package io.stowage.operator.model;

import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.ModelDescription;
import io.stowage.placement.memory.ModelShape;
import java.util.Objects;

/**
 * The summary of a GGUF header the operator plans from: what `inspect --json` prints and what the
 * HTTP header reader returns.
 *
 * @param parameters the sum of tensor elements
 * @param quantization the tensor type holding most of the weight bytes, e.g. Q8_0
 */
public record ModelHeader(String architecture, String name, long parameters, String quantization, ModelShape shape) {
    public ModelHeader {
        Objects.requireNonNull(architecture, "architecture");
        Objects.requireNonNull(shape, "shape");
    }

    /** The summary of a header read by the placement library. */
    public static ModelHeader from(GgufFile file) {
        ModelDescription d = ModelDescription.from(file);
        return new ModelHeader(
                d.architecture(),
                d.name().isEmpty() ? null : d.name(),
                d.parameterCount(),
                d.quantization(),
                d.shape());
    }

    /** "7.2B", "292K": parameters in human units. */
    public String parametersHuman() {
        return Units.count(parameters);
    }
}
