package io.stowage.operator.security;

import io.fabric8.kubernetes.api.model.Capabilities;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.PodSecurityContext;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.SeccompProfile;
import io.fabric8.kubernetes.api.model.SecurityContext;
import io.fabric8.kubernetes.api.model.Volume;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The Pod Security Standards' baseline and restricted controls (kubernetes.io, "Pod Security Standards"), as the
 * PodSecurity admission plugin checks a pod spec: each violation is one line naming the field and why.
 */
public final class PodSecurityStandards {
    private PodSecurityStandards() {}

    /** Restricted allows only these volume types. */
    private static final Set<String> RESTRICTED_VOLUMES = Set.of(
            "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret");

    /** Baseline allows adding only these capabilities; restricted only NET_BIND_SERVICE. */
    private static final Set<String> BASELINE_CAPABILITIES = Set.of(
            "AUDIT_WRITE",
            "CHOWN",
            "DAC_OVERRIDE",
            "FOWNER",
            "FSETID",
            "KILL",
            "MKNOD",
            "NET_BIND_SERVICE",
            "SETFCAP",
            "SETGID",
            "SETPCAP",
            "SETUID",
            "SYS_CHROOT");

    /** What the restricted profile (which includes baseline) refuses in {@code spec}; empty when admissible. */
    public static List<String> restrictedViolations(PodSpec spec) {
        List<String> out = new ArrayList<>();
        PodSecurityContext psc = spec.getSecurityContext();
        // Baseline: host namespaces.
        if (Boolean.TRUE.equals(spec.getHostNetwork())) {
            out.add("spec.hostNetwork is true (host namespaces are refused)");
        }
        if (Boolean.TRUE.equals(spec.getHostPID())) {
            out.add("spec.hostPID is true (host namespaces are refused)");
        }
        if (Boolean.TRUE.equals(spec.getHostIPC())) {
            out.add("spec.hostIPC is true (host namespaces are refused)");
        }
        // Baseline: hostPath volumes; restricted: only the listed volume types.
        for (Volume v : spec.getVolumes() == null ? List.<Volume>of() : spec.getVolumes()) {
            String type = volumeType(v);
            if (!RESTRICTED_VOLUMES.contains(type)) {
                out.add("volume " + v.getName() + " is a " + type + " volume (restricted allows " + RESTRICTED_VOLUMES
                        + ")");
            }
        }
        if (psc != null && psc.getSysctls() != null && !psc.getSysctls().isEmpty()) {
            out.add("spec.securityContext.sysctls is set (checked against the safe set; none are expected here)");
        }
        boolean podNonRoot = psc != null && Boolean.TRUE.equals(psc.getRunAsNonRoot());
        String podSeccomp = seccomp(psc == null ? null : psc.getSeccompProfile());
        if (psc != null && psc.getRunAsUser() != null && psc.getRunAsUser() == 0) {
            out.add("spec.securityContext.runAsUser is 0 (restricted refuses root)");
        }
        if (psc != null && psc.getSeccompProfile() != null && !allowedSeccomp(podSeccomp)) {
            out.add("spec.securityContext.seccompProfile.type is " + podSeccomp);
        }
        List<Container> all = Stream.concat(
                        spec.getInitContainers() == null
                                ? Stream.<Container>empty()
                                : spec.getInitContainers().stream(),
                        spec.getContainers().stream())
                .toList();
        for (Container c : all) {
            String at = "container " + c.getName() + ": ";
            SecurityContext sc = c.getSecurityContext();
            if (c.getPorts() != null
                    && c.getPorts().stream().anyMatch(p -> p.getHostPort() != null && p.getHostPort() != 0)) {
                out.add(at + "a hostPort is set (baseline refuses host ports)");
            }
            if (sc != null && Boolean.TRUE.equals(sc.getPrivileged())) {
                out.add(at + "securityContext.privileged is true");
            }
            if (sc != null && sc.getProcMount() != null && !"Default".equals(sc.getProcMount())) {
                out.add(at + "securityContext.procMount is " + sc.getProcMount());
            }
            if (sc == null || !Boolean.FALSE.equals(sc.getAllowPrivilegeEscalation())) {
                out.add(at + "securityContext.allowPrivilegeEscalation must be false");
            }
            boolean nonRoot = sc != null && sc.getRunAsNonRoot() != null ? sc.getRunAsNonRoot() : podNonRoot;
            if (!nonRoot) {
                out.add(at + "runAsNonRoot must be true (in the container's or the pod's securityContext)");
            }
            if (sc != null && sc.getRunAsUser() != null && sc.getRunAsUser() == 0) {
                out.add(at + "securityContext.runAsUser is 0");
            }
            String containerSeccomp = sc == null ? null : seccomp(sc.getSeccompProfile());
            String effective = containerSeccomp != null ? containerSeccomp : podSeccomp;
            if (!allowedSeccomp(effective)) {
                out.add(at + "seccompProfile.type must be RuntimeDefault or Localhost (in the container or the pod),"
                        + " is " + effective);
            }
            Capabilities caps = sc == null ? null : sc.getCapabilities();
            if (caps == null || caps.getDrop() == null || !caps.getDrop().contains("ALL")) {
                out.add(at + "securityContext.capabilities.drop must contain ALL");
            }
            if (caps != null && caps.getAdd() != null) {
                for (String add : caps.getAdd()) {
                    if (!"NET_BIND_SERVICE".equals(add)) {
                        out.add(at + "adds capability " + add + " (restricted allows only NET_BIND_SERVICE"
                                + (BASELINE_CAPABILITIES.contains(add) ? ")" : "; baseline refuses it too)"));
                    }
                }
            }
        }
        return out;
    }

    private static String seccomp(SeccompProfile p) {
        return p == null ? null : p.getType();
    }

    private static boolean allowedSeccomp(String type) {
        return "RuntimeDefault".equals(type) || "Localhost".equals(type);
    }

    private static String volumeType(Volume v) {
        if (v.getHostPath() != null) return "hostPath";
        if (v.getEmptyDir() != null) return "emptyDir";
        if (v.getPersistentVolumeClaim() != null) return "persistentVolumeClaim";
        if (v.getSecret() != null) return "secret";
        if (v.getConfigMap() != null) return "configMap";
        if (v.getProjected() != null) return "projected";
        if (v.getDownwardAPI() != null) return "downwardAPI";
        if (v.getCsi() != null) return "csi";
        if (v.getEphemeral() != null) return "ephemeral";
        if (v.getNfs() != null) return "nfs";
        return "other";
    }
}
