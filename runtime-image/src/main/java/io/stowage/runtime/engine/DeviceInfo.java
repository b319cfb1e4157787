package io.stowage.runtime.engine;

/**
 * The device a {@link Backend} runs on, as the core reports it.
 *
 * @param kind cpu or cuda
 * @param ordinal the CUDA device number (0 on the CPU)
 * @param name the device's name (CPU: the processor's model name)
 * @param uuid the GPU's UUID ({@code GPU-…}, {@code MIG-…}); null on the CPU
 * @param totalBytes the device's memory (CPU: the machine's RAM)
 */
public record DeviceInfo(String kind, int ordinal, String name, String uuid, long totalBytes) {}
