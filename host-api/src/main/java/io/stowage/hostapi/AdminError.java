package io.stowage.hostapi;

/** The body of a refused admin call: a reason code and a message with the numbers. */
public record AdminError(String reason, String message) {}
