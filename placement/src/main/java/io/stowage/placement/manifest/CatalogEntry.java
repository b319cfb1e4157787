package io.stowage.placement.manifest;

import io.stowage.placement.memory.ModelShape;

/**
 * A model's header summary from a {@code --models} catalog: the fields {@code inspect --json}
 * prints, for models whose file {@code plan} cannot read.
 *
 * @param quantization e.g. Q4_K_M, or null when not given
 * @param parameters parameter count, 0 when not given
 * @param sha256 content digest, or null when not given
 */
public record CatalogEntry(ModelShape shape, String quantization, long parameters, String sha256) {}
