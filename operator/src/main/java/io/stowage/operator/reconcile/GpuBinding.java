package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.stowage.hostapi.DeviceState;
import io.stowage.hostapi.GpuUuids;
import io.stowage.operator.inventory.Inventory;
import java.util.Map;
import org.jboss.logging.Logger;

/**
 * Records on each host pod the UUID of the GPU its host reported ({@link Labels#GPU_UUID_ANNOTATION}): the device
 * plugin, not the planner, picks which GPU of the node a pod gets, so the pod's GPU is known only once its host
 * says; from then on the inventory matches DCGM's usage to the pod's device by that UUID, also after an operator
 * restart.
 */
final class GpuBinding {
    private static final Logger LOG = Logger.getLogger(GpuBinding.class);

    private GpuBinding() {}

    /**
     * The host's GPU by UUID: the one its CUDA backend opened ({@code device.backend.uuid}, measured through the
     * driver), else the one its environment names ({@code device.gpuUuid}: the device plugin's allocation); null when
     * neither is a UUID.
     */
    static String reportedUuid(DeviceState device) {
        if (device == null) {
            return null;
        }
        String measured = device.backend() == null ? null : device.backend().uuid();
        return GpuUuids.isUuid(measured) ? measured : device.gpuUuid();
    }

    /** Annotates the hosts whose reported GPU UUID is new or changed; {@code hostPods} gets the updated pods. */
    static void record(
            KubernetesClient client, Map<String, Pod> hostPods, Map<String, PlacementLoop.HostReport> reports) {
        for (Map.Entry<String, Pod> e : hostPods.entrySet()) {
            PlacementLoop.HostReport rep = reports.get(e.getKey());
            String uuid = rep == null || rep.state() == null
                    ? null
                    : reportedUuid(rep.state().device());
            Pod pod = e.getValue();
            if (!GpuUuids.isUuid(uuid) || uuid.equals(Inventory.gpuUuidOf(pod))) {
                continue;
            }
            String ns = pod.getMetadata().getNamespace();
            String name = pod.getMetadata().getName();
            try {
                Pod updated = client.pods().inNamespace(ns).withName(name).edit(p -> {
                    p.getMetadata().getAnnotations().put(Labels.GPU_UUID_ANNOTATION, uuid);
                    return p;
                });
                LOG.infof("host pod %s/%s serves device %s on GPU %s", ns, name, e.getKey(), uuid);
                e.setValue(updated);
            } catch (KubernetesClientException ex) {
                // The next pass tries again; until then DCGM's usage is matched by pod attribution, if any.
                LOG.warnf("GPU %s of host pod %s/%s not recorded: %s", uuid, ns, name, ex.getMessage());
            }
        }
    }
}
