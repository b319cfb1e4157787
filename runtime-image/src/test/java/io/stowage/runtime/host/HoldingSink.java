package io.stowage.runtime.host;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;

/**
 * A job's sink that blocks the scheduler thread in each of its pieces until the test hands it a permit (or frees it):
 * every step of its model waits for the test, so tests follow from counts, not from speed.
 */
public final class HoldingSink implements TokenSink {
    public final Semaphore permits = new Semaphore(0);
    public final CountDownLatch entered = new CountDownLatch(1);
    /** The finish reason, or an AssertionError with the message when the job failed. */
    public final CompletableFuture<String> finished = new CompletableFuture<>();

    private volatile boolean free;

    /** Lets every later piece through without a permit. */
    public void free() {
        free = true;
        permits.release(Integer.MAX_VALUE / 2);
    }

    @Override
    public void onPiece(Piece piece) {
        entered.countDown();
        if (!free) {
            permits.acquireUninterruptibly();
        }
    }

    @Override
    public void onFinish(String finishReason, int promptTokens, int completionTokens) {
        finished.complete(finishReason);
    }

    @Override
    public void onError(int httpStatus, String type, String message) {
        finished.completeExceptionally(new AssertionError(message));
    }
}
