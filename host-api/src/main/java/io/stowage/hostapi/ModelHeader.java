package io.stowage.hostapi;

import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.ModelDescription;
import io.stowage.placement.memory.ModelShape;
import java.util.Objects;

/**
 * The summary of a GGUF header that the operator plans from, in one place for both sides: the runtime's
 * {@code inspect --json --output FILE} writes it (the probe pod's termination message) and the operator reads it,
 * as does the operator's HTTP header reader.
 *
 * <p>JSON: {@code {"architecture", "name", "parameters", "quantization", "shape": {ModelShape's fields}}}.
 *
 * @param name general.name, or null when the file has none
 * @param parameters the sum of tensor elements
 * @param quantization the tensor type holding most of the weight bytes, e.g. Q8_0
 */
public record ModelHeader(String architecture, String name, long parameters, String quantization, ModelShape shape) {
    /** Where the probe pod writes the summary: the container's termination message. */
    public static final String PROBE_OUTPUT = "/dev/termination-log";

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
}
