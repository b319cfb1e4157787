package io.stowage.hostapi;

/**
 * One model file the host must hold on its device.
 *
 * @param digest content key: the sha256 when known, otherwise a key derived from the URI
 * @param uri file, http(s), hf or s3 URI
 * @param sha256 the expected digest of the file, or null; a mismatch fails the model
 * @param weightBytes W_m as planned
 * @param workspaceBytes A_m as planned
 */
public record ModelAssignment(String digest, String uri, String sha256, long weightBytes, long workspaceBytes) {}
