package io.stowage.operator.model;

import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeBuilder;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.VolumeMountBuilder;
import io.stowage.hostapi.HostApi;
import io.stowage.operator.reconcile.Labels;
import java.net.URI;
import java.util.List;

/**
 * Where a {@code pvc://} or {@code file://} model source is mounted, read-only, in a host pod, and the
 * {@code file://} path the host reads it at.
 *
 * @param volumeName the pod volume's name, one per claim or node directory
 * @param volume the volume: the claim, or the file's node directory as a hostPath
 * @param mountPath fixed per source: {@link #ROOT}/NAME for a claim, the node directory's own path for a
 *     file (as the probe pod mounts it) unless that would cover the image's files
 * @param podUri the {@code file:///...} URI of the model inside the pod
 */
public record SourceMount(String volumeName, Volume volume, String mountPath, String podUri) {
    /** Sources are mounted below this directory, as the probe pod mounts its one source at it. */
    public static final String ROOT = "/source";

    /** The mount of {@code uri}, or null when the host downloads it itself (http(s), hf, s3). */
    public static SourceMount of(String uri) {
        URI u = URI.create(uri);
        String scheme = u.getScheme();
        if ("pvc".equals(scheme)) {
            String claim = u.getHost();
            String name = "source-" + Labels.hash("pvc:" + claim, 10);
            Volume v = new VolumeBuilder()
                    .withName(name)
                    .withNewPersistentVolumeClaim()
                    .withClaimName(claim)
                    .withReadOnly(true)
                    .endPersistentVolumeClaim()
                    .build();
            String mount = ROOT + "/" + name;
            return new SourceMount(name, v, mount, "file://" + mount + u.getPath());
        }
        if ("file".equals(scheme)) {
            String path = u.getPath();
            if (path != null && path.startsWith(ROOT + "/")) {
                // A path inside a host or probe pod (a recorded assignment's): there is nothing on the node to mount.
                return null;
            }
            int slash = path.lastIndexOf('/');
            String dir = slash <= 0 ? "/" : path.substring(0, slash);
            String name = "source-" + Labels.hash("file:" + dir, 10);
            Volume v = new VolumeBuilder()
                    .withName(name)
                    .withNewHostPath()
                    .withPath(dir)
                    .withType("Directory")
                    .endHostPath()
                    .build();
            // As in the probe pod, the node's directory appears at its own path, so the URI stays valid; a
            // directory that would cover the image's own files or another mount goes below ROOT instead.
            if (!shadowsImage(dir)) {
                return new SourceMount(name, v, dir, "file://" + path);
            }
            String mount = ROOT + "/" + name;
            return new SourceMount(name, v, mount, "file://" + mount + path.substring(slash));
        }
        return null;
    }

    /** Paths of the runtime image and of the host pod's other mounts that a source must not cover. */
    private static final List<String> RESERVED = List.of(
            "/tmp",
            ROOT,
            HostApi.CACHE_MOUNT,
            "/deployments",
            "/opt/java",
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib64",
            "/etc",
            "/proc",
            "/sys",
            "/dev",
            "/var",
            "/run",
            "/root",
            "/home");

    /** Whether mounting {@code dir} at its own path would hide (or be) a reserved path. */
    static boolean shadowsImage(String dir) {
        if (dir.equals("/")) {
            return true;
        }
        for (String r : RESERVED) {
            if (r.equals(dir) || r.startsWith(dir + "/") || dir.startsWith(ROOT + "/")) {
                return true;
            }
        }
        return false;
    }

    /** The URI the host is given: the in-pod path for mounted sources, {@code uri} itself otherwise. */
    public static String hostUri(String uri) {
        SourceMount m = of(uri);
        return m == null ? uri : m.podUri();
    }

    /** The read-only mount of this source's volume. */
    public VolumeMount volumeMount() {
        return new VolumeMountBuilder()
                .withName(volumeName)
                .withMountPath(mountPath)
                .withReadOnly(true)
                .build();
    }
}
