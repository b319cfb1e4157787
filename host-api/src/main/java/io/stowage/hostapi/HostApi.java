package io.stowage.hostapi;

/**
 * The runtime host's admin API, in one place for both sides (the operator is the client, the
 * runtime host the server).
 *
 * <ul>
 *   <li>{@code PUT /admin/v1/assignment} with a {@link HostAssignment} body: the host's whole
 *       desired state. Level-based and idempotent: the same body twice changes nothing. Answers 200
 *       with the {@link HostState} after accepting, 409 with an {@link AdminError} when the
 *       assignment does not fit the host's budget (nothing is changed), 400 when it is malformed.
 *   <li>{@code GET /admin/v1/state}: the host's actual {@link HostState}.
 * </ul>
 *
 * <p>Both need {@code Authorization: Bearer <token>}; the token comes from the Secret the operator
 * manages, mounted into the host as the environment variable {@link #TOKEN_ENV}. A missing or wrong
 * token answers 401. The admin API listens on its own port, {@link #DEFAULT_ADMIN_PORT}.
 */
public final class HostApi {
    public static final String ASSIGNMENT_PATH = "/admin/v1/assignment";
    public static final String STATE_PATH = "/admin/v1/state";
    public static final int DEFAULT_ADMIN_PORT = 8081;
    public static final int DEFAULT_API_PORT = 8080;
    public static final String TOKEN_ENV = "STOWAGE_ADMIN_TOKEN";
    public static final String AUTHORIZATION_HEADER = "Authorization";
    public static final String BEARER_PREFIX = "Bearer ";

    private HostApi() {}
}
