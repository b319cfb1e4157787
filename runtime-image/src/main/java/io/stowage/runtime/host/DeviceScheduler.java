package io.stowage.runtime.host;

import io.stowage.runtime.engine.ComputeContext;
import io.stowage.runtime.engine.Sampler;
import io.stowage.runtime.engine.Sequence;
import io.stowage.runtime.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.jboss.logging.Logger;

/**
 * The one scheduler thread of a device: continuous batching over the sequences of every replica of a model (decode
 * tokens first, then chunks of pending prompts), one model per step in turn, with admission from the replicas'
 * bounded queues as KV and slots free up.
 */
public final class DeviceScheduler implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(DeviceScheduler.class);

    private final String name;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition work = lock.newCondition();
    private final List<LoadedModel> models = new CopyOnWriteArrayList<>();
    private final Thread thread;
    private volatile boolean stopping;
    private boolean signalled;
    private int turn;
    private volatile long steps;

    public DeviceScheduler(String name) {
        this.name = name;
        this.thread =
                Thread.ofPlatform().name("stowage-scheduler-" + name).daemon().unstarted(this::loop);
        thread.start();
    }

    public String name() {
        return name;
    }

    public boolean alive() {
        return thread.isAlive();
    }

    public long steps() {
        return steps;
    }

    /** The models on the device, including removed ones whose last sequences are still running. */
    List<LoadedModel> models() {
        return List.copyOf(models);
    }

    void addModel(LoadedModel m) {
        models.add(m);
        wake();
    }

    void wake() {
        lock.lock();
        try {
            signalled = true;
            work.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Queues a request on a replica; the scheduler admits it when a slot and its KV blocks are free. */
    public Job submit(Replica r, GenerationRequest request, TokenSink sink) {
        lock.lock();
        try {
            if (r.removed) {
                throw new IllegalStateException("replica " + r.id() + " was removed");
            }
            if (r.queue.size() >= r.queueCapacity) {
                throw new QueueFullException("replica " + r.id() + " of model '" + r.servedModelName() + "' has "
                        + r.queue.size() + " requests queued (the limit) and " + r.running
                        + " running; retry later");
            }
            Job job = new Job(request, sink, r, io.stowage.runtime.engine.KvPool.BLOCK_TOKENS);
            r.queue.add(job);
            r.queued = r.queue.size();
            signalled = true;
            work.signalAll();
            return job;
        } finally {
            lock.unlock();
        }
    }

    private void loop() {
        while (!stopping) {
            try {
                LoadedModel next = housekeepAndPick();
                if (next == null) {
                    lock.lock();
                    try {
                        if (!signalled && !stopping) {
                            work.await(200, TimeUnit.MILLISECONDS);
                        }
                        signalled = false;
                    } finally {
                        lock.unlock();
                    }
                    continue;
                }
                step(next);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException | Error e) {
                LOG.errorf(e, "scheduler %s: unexpected error; continuing", name);
            }
        }
    }

    /** Drops cancelled work, admits queued jobs, frees removed replicas and models; picks the next model to step. */
    private LoadedModel housekeepAndPick() {
        List<LoadedModel> ready = new ArrayList<>();
        for (LoadedModel m : models) {
            for (Replica r : m.replicas) {
                for (Iterator<Job> it = r.active.iterator(); it.hasNext(); ) {
                    Job j = it.next();
                    if (j.cancelled()) {
                        it.remove();
                        finish(r, j, "cancelled");
                    }
                }
                admit(r, m);
                r.running = r.active.size();
                if (r.removed && r.active.isEmpty()) {
                    m.replicas.remove(r);
                    r.pool.close();
                }
            }
            if (m.removed && m.replicas.isEmpty()) {
                models.remove(m);
                m.close();
                continue;
            }
            if (m.loaded() || m.removed) {
                for (Replica r : m.replicas) {
                    if (!r.active.isEmpty()) {
                        ready.add(m);
                        break;
                    }
                }
            }
        }
        if (ready.isEmpty()) {
            return null;
        }
        turn = (turn + 1) % ready.size();
        return ready.get(turn);
    }

    private void admit(Replica r, LoadedModel m) {
        lock.lock();
        try {
            if (r.removed) {
                for (Job j : r.queue) {
                    j.sink.onError(503, "replica_removed", "replica " + r.id() + " was removed from this host");
                }
                r.queue.clear();
                r.queued = 0;
                return;
            }
            while (!r.queue.isEmpty() && r.active.size() < r.assignment.maxSequences()) {
                Job j = r.queue.peek();
                if (j.cancelled()) {
                    r.queue.poll();
                    j.sink.onFinish("cancelled", j.request.prompt().length, 0);
                    continue;
                }
                if (r.reservedBlocks + j.blocks > r.poolBlocks) {
                    break; // waits for KV: a running sequence must finish first
                }
                r.queue.poll();
                Sequence seq = null;
                try {
                    seq = r.pool.newSequence(j.totalTokens());
                    Sampler s = Sampler.create(j.request.sampler(), m.model.vocabSize());
                    j.start(seq, s, m.tokenizer);
                } catch (RuntimeException e) {
                    if (seq != null) {
                        seq.close();
                    }
                    j.sink.onError(500, "engine_error", "cannot start the sequence: " + e.getMessage());
                    continue;
                }
                r.reservedBlocks += j.blocks;
                r.active.add(j);
            }
            r.queued = r.queue.size();
        } finally {
            lock.unlock();
        }
    }

    private void finish(Replica r, Job j, String reason) {
        int generated = j.generated;
        j.release();
        r.reservedBlocks -= j.blocks;
        r.running = r.active.size();
        j.sink.onFinish(reason, j.request.prompt().length, generated);
    }

    /** One batched forward step of model m: every decoding sequence of its replicas, then prompt chunks. */
    private void step(LoadedModel m) {
        ComputeContext ctx = m.context;
        Tokenizer tokenizer = m.tokenizer;
        int vocab = m.model.vocabSize();
        int maxTokens = ctx.maxBatchTokens();
        int maxRows = ctx.maxLogitRows();
        int[] tokens = new int[maxTokens];
        Sequence[] seqs = new Sequence[maxTokens];
        boolean[] want = new boolean[maxTokens];
        List<Job> rowJobs = new ArrayList<>();
        List<Job> prefillJobs = new ArrayList<>();
        List<Integer> prefillTake = new ArrayList<>();
        int n = 0;
        for (Replica r : m.replicas) {
            for (Job j : r.active) {
                if (j.state == Job.State.DECODING && n < maxTokens && rowJobs.size() < maxRows) {
                    tokens[n] = j.nextToken;
                    seqs[n] = j.sequence;
                    want[n] = true;
                    n++;
                    rowJobs.add(j);
                }
            }
        }
        // Prompts fill what is left of the step, oldest first, so decoders never wait for a long prefill.
        List<Job> prefilling = new ArrayList<>();
        for (Replica r : m.replicas) {
            for (Job j : r.active) {
                if (j.state == Job.State.PREFILL) {
                    prefilling.add(j);
                }
            }
        }
        prefilling.sort((a, b) -> Long.compare(a.enqueuedNanos, b.enqueuedNanos));
        for (Job j : prefilling) {
            int len = j.request.prompt().length;
            int take = Math.min(len - j.prefilled, maxTokens - n);
            if (take <= 0) {
                break;
            }
            boolean last = j.prefilled + take == len;
            if (last && rowJobs.size() >= maxRows) {
                take--; // its last prompt token needs a logits row: it comes next step
                last = false;
                if (take == 0) {
                    continue;
                }
            }
            int[] prompt = j.request.prompt();
            for (int i = 0; i < take; i++) {
                tokens[n] = prompt[j.prefilled + i];
                seqs[n] = j.sequence;
                want[n] = last && i == take - 1;
                n++;
            }
            if (last) {
                rowJobs.add(j);
            }
            prefillJobs.add(j);
            prefillTake.add(take);
        }
        if (n == 0) {
            return;
        }
        float[] logits = m.logitsBuffer(maxRows * vocab);
        try {
            ctx.decode(
                    java.util.Arrays.copyOf(tokens, n),
                    java.util.Arrays.copyOf(seqs, n),
                    java.util.Arrays.copyOf(want, n),
                    logits);
        } catch (RuntimeException e) {
            LOG.errorf(e, "scheduler %s: step of %d tokens failed", name, n);
            for (Replica r : m.replicas) {
                for (Iterator<Job> it = r.active.iterator(); it.hasNext(); ) {
                    Job j = it.next();
                    if (rowJobs.contains(j) || prefillJobs.contains(j)) {
                        j.release();
                        r.reservedBlocks -= j.blocks;
                        j.sink.onError(500, "engine_error", "the engine failed this step: " + e.getMessage());
                        it.remove();
                    }
                }
            }
            return;
        }
        steps++;
        for (int i = 0; i < prefillJobs.size(); i++) {
            prefillJobs.get(i).prefilled += prefillTake.get(i);
        }
        for (int row = 0; row < rowJobs.size(); row++) {
            Job j = rowJobs.get(row);
            int offset = row * vocab;
            double lp = 0;
            List<TokenSink.TopLogprob> top = null;
            int k = j.request.topLogprobs();
            // Logprobs of the model's distribution, before the sampler's temperature and filters.
            if (k >= 0) {
                top = Job.topOf(logits, offset, vocab, k, tokenizer);
            }
            int repeatN = j.request.sampler().repeatLastN();
            int[] recent = new int[Math.max(1, repeatN)];
            j.recent(repeatN, recent);
            int token = j.sampler.sample(logits, offset, recent, Math.min(repeatN, j.historyLength));
            if (k >= 0) {
                lp = Job.logprob(logits, offset, vocab, token);
            }
            j.state = Job.State.DECODING;
            String reason;
            try {
                reason = j.accept(token, tokenizer, lp, top);
            } catch (RuntimeException e) {
                LOG.warnf(e, "scheduler %s: output of a sequence failed", name);
                Replica r = j.replica;
                r.active.remove(j);
                j.release();
                r.reservedBlocks -= j.blocks;
                j.sink.onError(500, "server_error", "output failed: " + e);
                continue;
            }
            if (reason != null) {
                Replica r = j.replica;
                r.active.remove(j);
                finish(r, j, reason);
            }
        }
    }

    @Override
    public void close() {
        stopping = true;
        wake();
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (LoadedModel m : models) {
            for (Replica r : m.replicas) {
                for (Job j : r.active) {
                    j.release();
                }
                r.pool.close();
            }
            m.close();
        }
        models.clear();
    }
}
