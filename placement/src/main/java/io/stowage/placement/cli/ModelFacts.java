package io.stowage.placement.cli;

import io.stowage.placement.memory.ModelShape;

/**
 * What {@code plan} knows about one model file and where it learned it.
 *
 * @param quantization e.g. Q4_K_M, or null when unknown
 * @param parameters parameter count, 0 when unknown
 * @param sha256 content digest from the catalog, or null
 * @param source e.g. "GGUF header of /models/x.gguf" or "catalog models.yaml"
 */
public record ModelFacts(ModelShape shape, String quantization, long parameters, String sha256, String source) {}
