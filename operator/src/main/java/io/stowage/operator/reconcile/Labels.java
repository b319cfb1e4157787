package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.HasMetadata;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;

/** The labels, annotations and names the operator puts on the objects it owns. */
public final class Labels {
    public static final String MANAGED_BY = "app.kubernetes.io/managed-by";
    public static final String MANAGED_BY_VALUE = "stowage-operator";
    public static final String COMPONENT = "app.kubernetes.io/component";
    public static final String COMPONENT_HOST = "runtime-host";
    public static final String COMPONENT_PROBE = "model-probe";
    public static final String NODE_LABEL = "stowage.io/node";
    /** The device id ({@code node/gpu-0}) a host pod serves. */
    public static final String DEVICE_ANNOTATION = "stowage.io/device";
    /**
     * The UUID of the GPU the device plugin gave a host pod, as its host reported it ({@code GPU-…} or
     * {@code MIG-…}): the inventory matches DCGM's usage to the pod's device by it.
     */
    public static final String GPU_UUID_ANNOTATION = "stowage.io/gpu-uuid";
    /** The host's desired {@code HostAssignment} as JSON: the ledger the operator rebuilds from. */
    public static final String ASSIGNMENT_ANNOTATION = "stowage.io/assignment";
    /**
     * On a host pod that must be replaced (its volumes or memory cannot change), why: its replicas move elsewhere
     * first (make before break), as off a cordoned node, and it is deleted once they serve there.
     */
    public static final String REPLACE_ANNOTATION = "stowage.io/replace";
    /** Set to "true" on a host on which the deployment's model is ready; the Service selects it. */
    public static final String READY_PREFIX = "ready.stowage.io/";

    public static final String DEPLOYMENT_LABEL = "stowage.io/deployment";
    public static final String FINALIZER = "stowage.io/finalizer";
    /**
     * The optional Secret of model credentials in a deployment's namespace ({@code HF_TOKEN}, S3 keys): its keys
     * become environment variables of the probe pod and of every host pod, which both download the model.
     */
    public static final String MODEL_CREDENTIALS_SECRET = "stowage-model-credentials";

    public static final String TOKEN_SECRET = "stowage-admin-token";
    public static final String TOKEN_KEY = "token";
    /** Per namespace with hosts: the hosts' admin TLS key and certificate, and the CA's certificate. */
    public static final String HOST_TLS_SECRET = "stowage-host-tls";
    /** In the operator's namespace: the CA that signs the hosts' admin certificates. */
    public static final String CA_SECRET = "stowage-admin-ca";

    private Labels() {}

    public static boolean isHost(HasMetadata o) {
        Map<String, String> l = o.getMetadata().getLabels();
        return l != null && MANAGED_BY_VALUE.equals(l.get(MANAGED_BY)) && COMPONENT_HOST.equals(l.get(COMPONENT));
    }

    /** The ready label key of a deployment: its name when it fits a label name, else a hash. */
    public static String readyLabel(String deploymentName) {
        String n = deploymentName.length() <= 63 ? deploymentName : "h-" + hash(deploymentName, 16);
        return READY_PREFIX + n;
    }

    /** The host pod's name for a device: readable, DNS-safe, unique by a hash of the device id. */
    public static String hostPodName(String deviceId) {
        String readable = deviceId.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9-]", "-");
        if (readable.length() > 40) {
            readable = readable.substring(0, 40);
        }
        readable = readable.replaceAll("-+$", "");
        return "stowage-host-" + readable + "-" + hash(deviceId, 8);
    }

    /** The probe pod's name for a model source. */
    public static String probePodName(String sourceKey) {
        return "stowage-inspect-" + hash(sourceKey, 16);
    }

    /** Hex of the first {@code chars / 2} bytes of the SHA-256 of {@code s}. */
    public static String hash(String s, int chars) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d).substring(0, chars);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
