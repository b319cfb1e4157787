package io.stowage.hostapi;

/**
 * A model on a host.
 *
 * @param reason why it failed (null unless FAILED)
 * @param downloadedBytes progress while DOWNLOADING
 * @param totalBytes the file's size when known, else -1
 * @param weightBytes measured bytes of its weights on the device (once, however many replicas)
 * @param workspaceBytes measured workspace bytes
 */
public record ModelState(
        String digest,
        String uri,
        ModelPhase phase,
        String reason,
        long downloadedBytes,
        long totalBytes,
        long weightBytes,
        long workspaceBytes) {}
