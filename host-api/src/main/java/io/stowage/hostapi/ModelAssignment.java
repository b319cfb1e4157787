package io.stowage.hostapi;

/**
 * One model file the host must hold on its device.
 *
 * @param digest content key: the sha256 when known, otherwise a key derived from the URI
 * @param uri file, http(s), hf or s3 URI
 * @param sha256 the expected digest of the file, or null; a mismatch fails the model
 * @param weightBytes W_m as planned, {@code >= 0} (0: unknown); it also bounds the size of a download
 * @param workspaceBytes A_m as planned, {@code >= 0}
 */
public record ModelAssignment(String digest, String uri, String sha256, long weightBytes, long workspaceBytes) {
    /** What is out of range in this model's numbers, as one line naming the field and the value; or null. */
    public String rangeProblem() {
        if (weightBytes < 0) {
            return "weightBytes must be >= 0, got " + weightBytes;
        }
        if (workspaceBytes < 0) {
            return "workspaceBytes must be >= 0, got " + workspaceBytes;
        }
        return null;
    }
}
