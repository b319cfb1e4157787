package io.stowage.operator.model;

import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeBuilder;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.VolumeMountBuilder;
import io.stowage.operator.reconcile.Labels;
import java.net.URI;

/**
 * Where a {@code pvc://} or {@code file://} model source is mounted, read-only, in a host pod, and the
 * {@code file://} path the host reads it at.
 *
 * @param volumeName the pod volume's name, one per claim or node directory
 * @param volume the volume: the claim, or the file's node directory as a hostPath
 * @param mountPath under {@link #ROOT}, fixed per source
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
            String mount = ROOT + "/" + name;
            return new SourceMount(name, v, mount, "file://" + mount + path.substring(slash));
        }
        return null;
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
