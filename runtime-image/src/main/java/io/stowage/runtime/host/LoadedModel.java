package io.stowage.runtime.host;

import io.stowage.hostapi.ModelAssignment;
import io.stowage.hostapi.ModelPhase;
import io.stowage.runtime.chat.ChatTemplate;
import io.stowage.runtime.engine.ComputeContext;
import io.stowage.runtime.engine.NativeModel;
import io.stowage.runtime.tokenizer.Tokenizer;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * One model file on one device, loaded once whatever the number of replicas and deployments that use it: the
 * mapped weights, the tokenizer and chat template, and the compute context its batched steps run in.
 */
public final class LoadedModel {
    final ModelAssignment assignment;
    final List<Replica> replicas = new CopyOnWriteArrayList<>();

    volatile ModelPhase phase = ModelPhase.DOWNLOADING;
    volatile String reason;
    volatile long downloadedBytes;
    volatile long totalBytes = -1;
    /** Bytes of the weights uploaded to the device so far (a GPU; the CPU maps them: all at once). */
    volatile long uploadedBytes;

    volatile boolean removed;

    volatile NativeModel model;
    volatile Tokenizer tokenizer;
    volatile ChatTemplate chatTemplate;
    volatile ComputeContext context;

    /** Consecutive failed steps (scheduler thread only; see DeviceScheduler.FAILED_STEPS_TO_FAIL_MODEL). */
    int failedSteps;

    LoadedModel(ModelAssignment assignment) {
        this.assignment = assignment;
    }

    public String digest() {
        return assignment.digest();
    }

    public ModelPhase phase() {
        return phase;
    }

    public String reason() {
        return reason;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public ChatTemplate chatTemplate() {
        return chatTemplate;
    }

    public NativeModel model() {
        return model;
    }

    boolean loaded() {
        return phase == ModelPhase.LOADED && !removed;
    }

    /** The weights' bytes; 0 once the model is freed (the device thread may free it while the state is read). */
    long weightBytes() {
        NativeModel m = model;
        try {
            return m == null ? 0 : m.weightBytes();
        } catch (IllegalStateException closed) {
            return 0;
        }
    }

    /** Measured bytes of the weights' buffer on the backend's device; 0 before loading or once freed. */
    long deviceBytes(io.stowage.runtime.engine.Backend backend) {
        NativeModel m = model;
        try {
            return m == null ? 0 : m.deviceBytes(backend);
        } catch (IllegalStateException closed) {
            return 0;
        }
    }

    /** The compute context's A_m (its share of the device's one workspace); 0 once it is freed. */
    long workspaceBytes() {
        ComputeContext c = context;
        try {
            return c == null ? 0 : c.workspaceBytes();
        } catch (IllegalStateException closed) {
            return 0;
        }
    }

    /** FAILED with the reason: at load, or at run time when its steps keep failing (the weights stay until removed). */
    void fail(String why) {
        reason = why;
        phase = ModelPhase.FAILED;
    }

    /** Frees the context and the weights (the scheduler calls this once no replica uses them). */
    void close() {
        ComputeContext c = context;
        context = null;
        if (c != null) {
            c.close();
        }
        NativeModel m = model;
        model = null;
        if (m != null) {
            m.close();
        }
    }

    private float[] logits;

    /** The scheduler's logits buffer for this model, allocated once (scheduler thread only). */
    float[] logitsBuffer(int floats) {
        if (logits == null || logits.length < floats) {
            logits = new float[floats];
        }
        return logits;
    }
}
