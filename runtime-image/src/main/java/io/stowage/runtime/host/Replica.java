package io.stowage.runtime.host;

import io.stowage.hostapi.ReplicaAssignment;
import io.stowage.runtime.engine.KvPool;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * An admission partition of a loaded model: its own KV pool (reserved from the device budget), its own sequence
 * slots and its own bounded queue; its running sequences join the model's shared batched step.
 */
public final class Replica {
    final ReplicaAssignment assignment;
    final LoadedModel model;
    final KvPool pool;
    final int queueCapacity;
    private final DeviceScheduler device;
    /** Blocks of the pool (all of it is allocated up front). */
    final long poolBlocks;
    /** What the pool allocated up front (fixed for its life). */
    private final long reservedBytes;

    // Guarded by device.lock.
    final ArrayDeque<Job> queue = new ArrayDeque<>();
    final List<Job> active = new ArrayList<>();
    long reservedBlocks;
    volatile boolean removed;
    volatile int queued;
    volatile int running;

    Replica(ReplicaAssignment assignment, LoadedModel model, KvPool pool, int queueCapacity, DeviceScheduler device) {
        this.assignment = assignment;
        this.model = model;
        this.pool = pool;
        this.queueCapacity = queueCapacity;
        this.device = device;
        long blockBytes = model.model.kvBytesPerToken(pool.type()) * KvPool.BLOCK_TOKENS;
        this.reservedBytes = pool.allocatedBytes();
        this.poolBlocks = reservedBytes / blockBytes;
    }

    public String id() {
        return assignment.id();
    }

    public String servedModelName() {
        return assignment.servedModelName();
    }

    public LoadedModel model() {
        return model;
    }

    public int maxTokens() {
        return assignment.maxTokens();
    }

    /** The most tokens (prompt + new) one request may take here: the replica's budget and the model's context. */
    public int maxRequestTokens() {
        long blocksTokens = poolBlocks * KvPool.BLOCK_TOKENS;
        return (int) Math.min(Math.min(assignment.maxTokens(), model.model.contextLength()), blocksTokens);
    }

    DeviceScheduler device() {
        return device;
    }

    /** Load as a fraction of the replica's slots, for picking the least busy replica of a served name. */
    double load() {
        return (queued + running) / (double) Math.max(1, assignment.maxSequences());
    }

    long kvReservedBytes() {
        return pool.isClosed() ? 0 : reservedBytes;
    }

    long kvUsedBytes() {
        try {
            return pool.isClosed() ? 0 : pool.usedBytes();
        } catch (RuntimeException e) {
            return 0; // closed by the scheduler meanwhile
        }
    }

    public int queuedRequests() {
        return queued;
    }

    public int activeSequences() {
        return running;
    }
}
