package io.stowage.runtime.engine;

import java.lang.annotation.Native;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * An owned pointer to a native object that is freed exactly once, by {@link #close()}, after its dependents.
 *
 * <p>Calls take a read lock for their duration and close takes the write lock, so a handle is never freed while a
 * call on it runs on another thread, and every call after close throws {@link IllegalStateException}. Closing a
 * parent (a model) first closes what depends on it (its KV pools and their sequences, its compute contexts),
 * so the native side never sees a dangling parent.
 */
abstract class NativeHandle implements AutoCloseable {
    @Native
    private long pointer;

    private volatile boolean closing;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final NativeHandle parent;
    private final Set<NativeHandle> children = new LinkedHashSet<>();

    /** The caller holds the parent's read lock (it created the pointer from it). */
    NativeHandle(long pointer, NativeHandle parent) {
        if (pointer == 0) {
            throw new NativeEngineException(EngineStatus.INTERNAL, describe() + ": the core returned a null handle");
        }
        this.pointer = pointer;
        this.parent = parent;
        if (parent != null) {
            synchronized (parent.children) {
                parent.children.add(this);
            }
        }
    }

    /** Frees the native object; called at most once, under the write lock. */
    abstract void free(long pointer);

    /** A short name for messages, e.g. "model stories260K-f32.gguf". */
    abstract String describe();

    /** Locks the handle for a call and returns the pointer; pair with {@link #release()} in a finally block. */
    final long acquire() {
        lock.readLock().lock();
        if (closing || pointer == 0) {
            lock.readLock().unlock();
            throw new IllegalStateException(describe() + " is closed");
        }
        return pointer;
    }

    final void release() {
        lock.readLock().unlock();
    }

    public final boolean isClosed() {
        return closing;
    }

    /** Frees the native object and every dependent one; a second call does nothing. */
    @Override
    public final void close() {
        closing = true;
        closeChildren();
        lock.writeLock().lock();
        try {
            // A child created by a call that had acquired this handle before `closing` was set is registered by now.
            closeChildren();
            if (pointer != 0) {
                long p = pointer;
                pointer = 0;
                free(p);
            }
        } finally {
            lock.writeLock().unlock();
        }
        if (parent != null) {
            synchronized (parent.children) {
                parent.children.remove(this);
            }
        }
    }

    private void closeChildren() {
        List<NativeHandle> snapshot;
        synchronized (children) {
            snapshot = new ArrayList<>(children);
        }
        for (int i = snapshot.size() - 1; i >= 0; i--) {
            snapshot.get(i).close();
        }
    }
}
