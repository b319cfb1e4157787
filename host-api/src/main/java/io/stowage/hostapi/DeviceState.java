package io.stowage.hostapi;

/**
 * The host's device: {@code kind} is gpu or cpu; {@code usedBytes} is what the host itself
 * allocated (weights + workspace + KV reserved + overhead).
 */
public record DeviceState(String kind, String name, long totalBytes, long budgetBytes, long usedBytes) {}
