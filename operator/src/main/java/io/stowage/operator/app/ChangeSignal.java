package io.stowage.operator.app;

/**
 * The informers' "something changed" on its way to the {@link PlacementScheduler}, which is made after the
 * placement loop whose caches send it.
 */
public final class ChangeSignal implements Runnable {
    private volatile Runnable target;

    void connect(Runnable target) {
        this.target = target;
    }

    @Override
    public void run() {
        Runnable t = target;
        if (t != null) {
            t.run();
        }
    }
}
