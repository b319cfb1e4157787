package io.stowage.runtime.host;

import java.util.List;

/**
 * Receives a job's output on the scheduler thread; implementations hand it to their own thread (the HTTP event
 * loop) and must not block.
 */
public interface TokenSink {
    /** One alternative of {@link Piece#top}. */
    record TopLogprob(String token, double logprob) {}

    /**
     * Text produced by one step: may be empty (an incomplete UTF-8 sequence, or text held back because it could
     * start a stop string); logprob/top are set only when the request asked for logprobs.
     */
    record Piece(String text, int tokenId, String tokenText, double logprob, List<TopLogprob> top) {}

    /** The first token is about to come (after prefill): time to first token ends here. */
    default void onStart() {}

    void onPiece(Piece piece);

    /**
     * The job ended.
     *
     * @param finishReason "stop" (EOS or a stop string), "length" (max tokens), "cancelled"
     */
    void onFinish(String finishReason, int promptTokens, int completionTokens);

    /** The job failed (engine error, replica removed); nothing more comes. */
    void onError(int httpStatus, String type, String message);
}
