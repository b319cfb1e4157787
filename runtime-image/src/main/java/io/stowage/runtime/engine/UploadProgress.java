package io.stowage.runtime.engine;

/** Hears a model's weights being uploaded to a device, chunk by chunk (called on the uploading thread). */
@FunctionalInterface
public interface UploadProgress {
    /**
     * Called from native code (stowage_jni.cpp caches this method in JNI_OnLoad): keep the signature.
     *
     * @return false to cancel the upload (the load then fails with status CANCELLED and keeps nothing)
     */
    boolean onProgress(long doneBytes, long totalBytes);
}
