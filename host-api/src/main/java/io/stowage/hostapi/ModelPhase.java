package io.stowage.hostapi;

/** Where a model is on a host. */
public enum ModelPhase {
    DOWNLOADING,
    LOADING,
    LOADED,
    FAILED,
    UNLOADING
}
