package io.stowage.runtime.host;

import io.stowage.hostapi.ModelPhase;
import io.stowage.runtime.engine.ComputeContext;
import io.stowage.runtime.engine.Sampler;
import io.stowage.runtime.engine.Sequence;
import io.stowage.runtime.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
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
 * bounded queues as KV and slots free up. A request whose step fails fails alone, with its KV and slot freed; a
 * model whose steps keep failing is reported FAILED.
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

    /**
     * Consecutive failed steps after which a model is reported FAILED (admin state, metrics, readiness) and serves
     * no more requests. A step fails when it fails at least one request and produces no token; a produced token
     * resets the count, and steps that only take prompt chunks leave it as it is.
     */
    public static final int FAILED_STEPS_TO_FAIL_MODEL = 3;

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
            LoadedModel next = null;
            try {
                next = housekeepAndPick();
                if (next == null || !step(next)) {
                    awaitWork();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException | Error e) {
                LOG.errorf(
                        e,
                        "scheduler %s: unexpected error; failing the running requests of the model and continuing",
                        name);
                if (next != null) {
                    failRunning(next, e);
                }
            }
        }
    }

    private void awaitWork() throws InterruptedException {
        lock.lock();
        try {
            if (!signalled && !stopping) {
                work.await(200, TimeUnit.MILLISECONDS);
            }
            signalled = false;
        } finally {
            lock.unlock();
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
                    error(j, 503, "replica_removed", "replica " + r.id() + " was removed from this host");
                }
                r.queue.clear();
                r.queued = 0;
                return;
            }
            if (m.phase == ModelPhase.FAILED) {
                for (Job j : r.queue) {
                    error(j, 503, "model_failed", failedMessage(m));
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
                    error(j, 500, "engine_error", "cannot start the sequence: " + e.getMessage());
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
        try {
            j.sink.onFinish(reason, j.request.prompt().length, generated);
        } catch (RuntimeException e) {
            LOG.warnf(e, "scheduler %s: the output of a finished request failed", name);
        }
    }

    /** Ends a running job with an error: out of the batch, its KV blocks and slot freed, its client told why. */
    private void fail(Job j, int status, String type, String message) {
        Replica r = j.replica;
        r.active.remove(j);
        j.release();
        r.reservedBlocks -= j.blocks;
        r.running = r.active.size();
        error(j, status, type, message);
    }

    private void error(Job j, int status, String type, String message) {
        try {
            j.sink.onError(status, type, message);
        } catch (RuntimeException e) {
            LOG.warnf(e, "scheduler %s: the output of a failed request failed", name);
        }
    }

    /** One job's share of a step: batch entries [start, start + count), and its logits row or -1. */
    private record Part(Job job, int start, int count, boolean prefill, int row) {}

    /** What a step did to its jobs: tokens produced, jobs failed and the last failure's reason. */
    private static final class Outcome {
        int produced;
        int failed;
        String lastError;

        void failed(String why) {
            failed++;
            lastError = why;
        }
    }

    /**
     * One batched forward step of model m: every decoding sequence of its replicas, then prompt chunks. A sequence
     * that fails (the engine's step, or logits that cannot be sampled) fails alone; returns false when there was
     * nothing to run.
     */
    private boolean step(LoadedModel m) {
        ComputeContext ctx = m.context;
        Tokenizer tokenizer = m.tokenizer;
        int vocab = m.model.vocabSize();
        int maxTokens = ctx.maxBatchTokens();
        int maxRows = ctx.maxLogitRows();
        int[] tokens = new int[maxTokens];
        Sequence[] seqs = new Sequence[maxTokens];
        boolean[] want = new boolean[maxTokens];
        List<Part> parts = new ArrayList<>();
        int rows = 0;
        int n = 0;
        for (Replica r : m.replicas) {
            for (Job j : r.active) {
                if (j.state == Job.State.DECODING && n < maxTokens && rows < maxRows) {
                    tokens[n] = j.nextToken;
                    seqs[n] = j.sequence;
                    want[n] = true;
                    parts.add(new Part(j, n, 1, false, rows++));
                    n++;
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
            if (last && rows >= maxRows) {
                take--; // its last prompt token needs a logits row: it comes next step
                last = false;
                if (take == 0) {
                    continue;
                }
            }
            int[] prompt = j.request.prompt();
            for (int i = 0; i < take; i++) {
                tokens[n + i] = prompt[j.prefilled + i];
                seqs[n + i] = j.sequence;
                want[n + i] = last && i == take - 1;
            }
            parts.add(new Part(j, n, take, true, last ? rows++ : -1));
            n += take;
        }
        if (n == 0) {
            return false;
        }
        float[] logits = m.logitsBuffer(maxRows * vocab);
        Outcome outcome = new Outcome();
        List<Part> done = decode(m, parts, tokens, seqs, want, n, logits, outcome);
        if (!done.isEmpty()) {
            steps++;
        }
        for (Part p : done) {
            if (p.prefill()) {
                p.job().prefilled += p.count();
            }
        }
        for (Part p : done) {
            if (p.row() >= 0) {
                sampleAndEmit(p.job(), logits, p.row() * vocab, vocab, tokenizer, outcome);
            }
        }
        if (outcome.produced > 0) {
            m.failedSteps = 0;
        } else if (outcome.failed > 0) {
            // Steps that only took prompt chunks leave the count alone, so long prompts do not hide a broken model.
            m.failedSteps++;
            if (m.failedSteps >= FAILED_STEPS_TO_FAIL_MODEL) {
                failModel(m, outcome.lastError);
            }
        }
        return true;
    }

    /**
     * Runs the step's batch; if the engine fails it, runs each job's part alone (a failed step changes no
     * sequence), so that only the parts that fail alone fail. Returns the parts that ran.
     */
    private List<Part> decode(
            LoadedModel m,
            List<Part> parts,
            int[] tokens,
            Sequence[] seqs,
            boolean[] want,
            int n,
            float[] logits,
            Outcome outcome) {
        ComputeContext ctx = m.context;
        try {
            ctx.decode(Arrays.copyOf(tokens, n), Arrays.copyOf(seqs, n), Arrays.copyOf(want, n), logits);
            return parts;
        } catch (RuntimeException e) {
            if (parts.size() == 1) {
                failPart(parts.get(0), e, outcome);
                return List.of();
            }
            LOG.warnf(
                    "scheduler %s: a step of %d tokens of %d requests of model %s failed (%s); running each request"
                            + " alone",
                    name, n, parts.size(), m.digest(), e.getMessage());
        }
        int vocab = m.model.vocabSize();
        float[] row = new float[vocab];
        List<Part> done = new ArrayList<>(parts.size());
        for (Part p : parts) {
            int from = p.start();
            int to = p.start() + p.count();
            try {
                ctx.decode(
                        Arrays.copyOfRange(tokens, from, to),
                        Arrays.copyOfRange(seqs, from, to),
                        Arrays.copyOfRange(want, from, to),
                        row);
            } catch (RuntimeException e) {
                failPart(p, e, outcome);
                continue;
            }
            if (p.row() >= 0) {
                System.arraycopy(row, 0, logits, p.row() * vocab, vocab);
            }
            done.add(p);
        }
        return done;
    }

    private void failPart(Part p, RuntimeException e, Outcome outcome) {
        String why = "the engine failed this request's step: " + e.getMessage();
        LOG.warnf("scheduler %s: %s", name, why);
        outcome.failed(why);
        fail(p.job(), 500, "engine_error", why);
    }

    /** Samples a job's next token from its logits row and hands it to the job's output. */
    private void sampleAndEmit(Job j, float[] logits, int offset, int vocab, Tokenizer tokenizer, Outcome outcome) {
        int repeatN = j.request.sampler().repeatLastN();
        int[] recent = new int[Math.max(1, repeatN)];
        j.recent(repeatN, recent);
        int token;
        try {
            token = j.sampler.sample(logits, offset, recent, Math.min(repeatN, j.historyLength));
        } catch (RuntimeException e) {
            String why = "the model cannot continue this request: " + e.getMessage();
            LOG.warnf("scheduler %s: %s", name, why);
            outcome.failed(why);
            fail(j, 500, "engine_error", why);
            return;
        }
        outcome.produced++;
        double lp = 0;
        List<TokenSink.TopLogprob> top = null;
        int k = j.request.topLogprobs();
        // Logprobs of the model's distribution, before the sampler's temperature and filters.
        if (k >= 0) {
            top = Job.topOf(logits, offset, vocab, k, tokenizer);
            lp = Job.logprob(logits, offset, vocab, token);
        }
        j.state = Job.State.DECODING;
        String reason;
        try {
            reason = j.accept(token, tokenizer, lp, top);
        } catch (RuntimeException e) {
            LOG.warnf(e, "scheduler %s: output of a sequence failed", name);
            fail(j, 500, "server_error", "internal error while writing the output; the host's log has the details");
            return;
        }
        if (reason != null) {
            Replica r = j.replica;
            r.active.remove(j);
            finish(r, j, reason);
        }
    }

    /** Reports the model failed and fails its running requests; its queued ones are refused at admission. */
    private void failModel(LoadedModel m, String lastError) {
        String why = m.failedSteps + " consecutive steps failed every request they ran; last: " + lastError;
        LOG.errorf("scheduler %s: model %s failed and serves no more requests: %s", name, m.digest(), why);
        m.fail(why);
        for (Replica r : m.replicas) {
            for (Job j : List.copyOf(r.active)) {
                fail(j, 503, "model_failed", failedMessage(m));
            }
        }
        wake();
    }

    private static String failedMessage(LoadedModel m) {
        return "model " + m.digest() + " failed on this host: " + m.reason() + " (see /admin/v1/state)";
    }

    /** After an unexpected error in a step of m: fails m's running requests, so none of them waits forever. */
    private void failRunning(LoadedModel m, Throwable e) {
        try {
            Outcome outcome = new Outcome();
            for (Replica r : m.replicas) {
                for (Job j : List.copyOf(r.active)) {
                    String why = "internal error in the scheduler; the host's log has the details";
                    outcome.failed(why);
                    fail(j, 500, "server_error", why);
                }
            }
            if (outcome.failed > 0 && ++m.failedSteps >= FAILED_STEPS_TO_FAIL_MODEL) {
                failModel(m, outcome.lastError);
            }
        } catch (RuntimeException | Error again) {
            LOG.errorf(again, "scheduler %s: cannot fail the requests of model %s", name, m.digest());
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
