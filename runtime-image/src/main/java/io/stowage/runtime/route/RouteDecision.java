package io.stowage.runtime.route;

import java.util.List;

/**
 * One routed request as the audit log keeps it: every tier the router considered, in order, and how it ended.
 *
 * @param id the router's id of the request ({@code X-Stowage-Route-Decision} on the response)
 * @param timeMillis when it arrived (epoch milliseconds)
 * @param route the route's name (the client's {@code model})
 * @param endpoint chat.completions or completions
 * @param streamed a streamed request: routed by the match rules only, never cascaded
 * @param answeredBy the deployment whose answer the client got, or null (no tier matched, every tier failed)
 * @param status the HTTP status the client got
 * @param latencyMillis from arrival until the answer was decided (for a stream: until it ended)
 */
public record RouteDecision(
        long id,
        long timeMillis,
        String route,
        String endpoint,
        boolean streamed,
        List<Attempt> tiers,
        String answeredBy,
        int status,
        double latencyMillis) {
    public RouteDecision {
        tiers = List.copyOf(tiers);
    }

    /** What happened at one tier. */
    public enum Outcome {
        /** Its match rules did not hold; not tried. */
        SKIPPED,
        /** Tried; its answer stood and went to the client. */
        ANSWERED,
        /** Tried; its confidence was below the threshold, so the next tier was tried. */
        ESCALATED,
        /** Tried; it failed (an error status or no connection). */
        FAILED
    }

    /**
     * One tier's part.
     *
     * @param reason why it was skipped, escalated or failed; null when it answered
     * @param confidence the tier's confidence, or null when it was not computed (skipped, failed, no cascade rule)
     * @param threshold the cascade rule's threshold, or null without one
     * @param costUnits latency seconds times the tier's cost weight (GPU-seconds by default)
     */
    public record Attempt(
            String deployment,
            Outcome outcome,
            String reason,
            Double confidence,
            Double threshold,
            int status,
            int promptTokens,
            int completionTokens,
            double latencyMillis,
            double costUnits) {
        static Attempt skipped(String deployment, String reason) {
            return new Attempt(deployment, Outcome.SKIPPED, reason, null, null, 0, 0, 0, 0, 0);
        }
    }
}
