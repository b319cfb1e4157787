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
 * <p>Both need {@code Authorization: Bearer <token>} (the scheme in any case, RFC 7235); the token comes from
 * the Secret the operator manages, mounted into the host pod as a file ({@link #TOKEN_FILE_ENV}) that the host
 * re-reads, so the token rotates without a restart ({@link #TOKEN_ENV} gives it directly in local runs and tests).
 * A missing or wrong token answers 401. The admin API listens on its own port, {@link #DEFAULT_ADMIN_PORT}.
 *
 * <p>In a cluster the admin API speaks TLS: the host serves the certificate and key of the files
 * {@link #TLS_CERT_FILE_ENV} and {@link #TLS_KEY_FILE_ENV} name (the operator's per-namespace Secret, mounted at
 * {@link #TLS_MOUNT}) and reloads them when they change. The certificate names {@link #adminServerName} of the
 * pod's namespace (a pod IP is not known when the certificate is issued); the operator verifies that name and its
 * own CA, not the IP it connects to. Without those files the admin API is plain HTTP (local mode, tests).
 *
 * <p>The host pod: the runtime image runs {@code host --device cuda|cpu} ({@link #HOST_COMMAND}) with the
 * environment {@link #TOKEN_ENV}, {@link #CACHE_DIR_ENV} (the node-local model cache, mounted at
 * {@link #CACHE_MOUNT}), {@link #DEVICE_ID_ENV} (the operator's name of the device, reported back in the
 * state, with the UUID of the GPU the device plugin gave the pod: {@link DeviceState#gpuUuid}), {@link #MODEL_HOSTS_ENV} and {@link #MODEL_ROOTS_ENV} (where its models may come from); the OpenAI API and the health probes ({@link #LIVE_PATH}, {@link #READY_PATH}) on
 * {@link #DEFAULT_API_PORT}. The model probe runs {@code inspect --json --output FILE URI} and writes a
 * {@link ModelHeader}.
 */
public final class HostApi {
    public static final String ASSIGNMENT_PATH = "/admin/v1/assignment";
    public static final String STATE_PATH = "/admin/v1/state";
    public static final int DEFAULT_ADMIN_PORT = 8081;
    public static final int DEFAULT_API_PORT = 8080;
    public static final String TOKEN_ENV = "STOWAGE_ADMIN_TOKEN";
    /** The model cache directory; the runtime's config property {@code stowage.cache-dir} reads it. */
    public static final String CACHE_DIR_ENV = "STOWAGE_CACHE_DIR";
    /** The device the operator planned this host for (e.g. {@code node-a/gpu-0}); the runtime reports it. */
    public static final String DEVICE_ID_ENV = "STOWAGE_DEVICE_ID";
    /**
     * The hosts a runtime host may download models from, or be redirected to, over https: comma-separated exact
     * names or {@code *.domain}; a lone comma is an empty list (an empty variable leaves the runtime's default).
     * The operator passes its own allowlist (the one its header reader uses); the runtime's config property
     * {@code stowage.model.allowed-hosts} reads it.
     */
    public static final String MODEL_HOSTS_ENV = "STOWAGE_MODEL_ALLOWED_HOSTS";
    /**
     * The directories a runtime host may read {@code file://} models from, comma-separated: the operator passes
     * the pod's model cache and source mounts; the runtime's config property {@code stowage.model.roots} reads it.
     */
    public static final String MODEL_ROOTS_ENV = "STOWAGE_MODEL_ROOTS";

    public static final String CACHE_MOUNT = "/models";
    public static final String HOST_COMMAND = "host";
    public static final String DEVICE_OPTION = "--device";
    public static final String LIVE_PATH = "/q/health/live";
    public static final String READY_PATH = "/q/health/ready";
    public static final String AUTHORIZATION_HEADER = "Authorization";
    public static final String BEARER_PREFIX = "Bearer ";
    /** The authentication scheme; compared case-insensitively (RFC 7235). */
    public static final String BEARER_SCHEME = "Bearer";

    /** A file holding the admin token (property {@code stowage.admin.token-file}); re-read while the host runs. */
    public static final String TOKEN_FILE_ENV = "STOWAGE_ADMIN_TOKEN_FILE";
    /** The admin API's PEM certificate chain (property {@code stowage.admin.tls.cert-file}); TLS when set. */
    public static final String TLS_CERT_FILE_ENV = "STOWAGE_ADMIN_TLS_CERT_FILE";
    /** The admin API's PEM private key (property {@code stowage.admin.tls.key-file}). */
    public static final String TLS_KEY_FILE_ENV = "STOWAGE_ADMIN_TLS_KEY_FILE";
    /** Where a host pod mounts the admin-token Secret (read-only). */
    public static final String TOKEN_MOUNT = "/var/run/stowage/admin-token";
    /** Where a host pod mounts its TLS Secret (read-only): {@code tls.crt}, {@code tls.key}, {@code ca.crt}. */
    public static final String TLS_MOUNT = "/var/run/stowage/admin-tls";

    /**
     * The DNS name in every host admin certificate of a namespace, and the name the operator verifies:
     * {@code stowage-host.<namespace>.svc}.
     */
    public static String adminServerName(String namespace) {
        return "stowage-host." + namespace + ".svc";
    }

    private HostApi() {}
}
