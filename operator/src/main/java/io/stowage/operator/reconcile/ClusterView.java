package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.stowage.operator.crd.LlmDeployment;
import java.util.List;

/**
 * What one placement pass reads of the cluster: the LlmDeployments, the nodes, the pods that matter to placement
 * (Stowage's host and probe pods, and other pods' GPU holdings) and the deployments' Services.
 */
public interface ClusterView extends AutoCloseable {

    List<LlmDeployment> deployments();

    List<Node> nodes();

    /** Stowage's own pods in full; any other pod may be trimmed to its node, phase and GPU limits. */
    List<Pod> pods();

    /** The Service of that name, or null when there is none. */
    Service service(String namespace, String name);

    @Override
    default void close() {}

    /** Today's read path, kept for comparison: three cluster-wide LISTs per pass and a GET per Service. */
    static ClusterView listing(KubernetesClient client) {
        return new ClusterView() {
            @Override
            public List<LlmDeployment> deployments() {
                return client.resources(LlmDeployment.class)
                        .inAnyNamespace()
                        .list()
                        .getItems();
            }

            @Override
            public List<Node> nodes() {
                return client.nodes().list().getItems();
            }

            @Override
            public List<Pod> pods() {
                return client.pods().inAnyNamespace().list().getItems();
            }

            @Override
            public Service service(String namespace, String name) {
                return client.services().inNamespace(namespace).withName(name).get();
            }
        };
    }
}
