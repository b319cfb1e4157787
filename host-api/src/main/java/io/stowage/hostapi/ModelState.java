package io.stowage.hostapi;

/**
 * A model on a host.
 *
 * @param reason why it failed (null unless FAILED)
 * @param downloadedBytes progress while DOWNLOADING
 * @param totalBytes the file's size when known, else -1
 * @param weightBytes bytes of its weights as the memory model counts them (W_m: every tensor as stored; once,
 *     however many replicas)
 * @param workspaceBytes its A_m (the device's one shared workspace is the largest of its models')
 * @param deviceBytes measured bytes of its weight buffer on the device, shared by all its replicas there: a GPU's
 *     copy of the file's tensor span (W_m plus the file's alignment padding), on a CPU the mapped span; 0 until
 *     loaded
 */
public record ModelState(
        String digest,
        String uri,
        ModelPhase phase,
        String reason,
        long downloadedBytes,
        long totalBytes,
        long weightBytes,
        long workspaceBytes,
        long deviceBytes) {
    /** A model without the device measurement (a host from before hosts reported it). */
    public ModelState(
            String digest,
            String uri,
            ModelPhase phase,
            String reason,
            long downloadedBytes,
            long totalBytes,
            long weightBytes,
            long workspaceBytes) {
        this(digest, uri, phase, reason, downloadedBytes, totalBytes, weightBytes, workspaceBytes, 0);
    }
}
