package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudgetBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * The PodDisruptionBudget of a namespace's host pods: one per namespace, not per deployment, because the eviction API
 * refuses to evict a pod that two budgets select, and a host serves several deployments.
 *
 * <p>With {@code maxUnavailable: 0} (the default) no eviction takes a serving host: {@code kubectl drain} cordons the
 * node, the operator starts each replica elsewhere, and deletes the old host itself once the replacement serves;
 * drain then finds the host gone. A host that is not Ready may always be evicted
 * ({@code unhealthyPodEvictionPolicy: AlwaysAllow}): it serves nothing.
 */
final class HostDisruptionBudgetDependent {
    private static final Logger LOG = Logger.getLogger(HostDisruptionBudgetDependent.class);

    static final String NAME = "stowage-hosts";

    private final KubernetesClient client;
    private final OperatorConfig.Disruption config;
    /** Namespaces whose budget this operator wrote or found as desired: an idle pass sends nothing. */
    private final Set<String> ensured = ConcurrentHashMap.newKeySet();

    HostDisruptionBudgetDependent(KubernetesClient client, OperatorConfig.Disruption config) {
        this.client = client;
        this.config = config;
    }

    /** The budget of {@code namespace}'s host pods. Pure. */
    static PodDisruptionBudget desired(String namespace, int maxUnavailable) {
        return new PodDisruptionBudgetBuilder()
                .withNewMetadata()
                .withName(NAME)
                .withNamespace(namespace)
                .addToLabels(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE)
                .addToLabels(Labels.COMPONENT, Labels.COMPONENT_HOST)
                .endMetadata()
                .withNewSpec()
                .withMaxUnavailable(new IntOrString(maxUnavailable))
                .withNewSelector()
                .addToMatchLabels(Labels.MANAGED_BY, Labels.MANAGED_BY_VALUE)
                .addToMatchLabels(Labels.COMPONENT, Labels.COMPONENT_HOST)
                .endSelector()
                .withUnhealthyPodEvictionPolicy("AlwaysAllow")
                .endSpec()
                .build();
    }

    /**
     * Creates or corrects the namespace's budget, once per operator run (a budget deleted meanwhile comes back after
     * a restart or when the namespace gets hosts again). A failure is logged and retried next pass: a missing budget
     * costs protection from evictions, never a host.
     */
    void ensure(String namespace) {
        if (!config.disruptionBudget() || ensured.contains(namespace)) {
            return;
        }
        PodDisruptionBudget want = desired(namespace, config.maxUnavailable());
        try {
            var pdbs = client.resources(PodDisruptionBudget.class).inNamespace(namespace);
            try {
                // Created first, read only when it exists: one request for a namespace's first host.
                pdbs.resource(want).create();
            } catch (KubernetesClientException e) {
                if (e.getCode() != 409) {
                    throw e;
                }
                PodDisruptionBudget have = pdbs.withName(NAME).get();
                if (have != null && !sameSpec(have, want)) {
                    pdbs.withName(NAME).edit(p -> {
                        p.setSpec(want.getSpec());
                        return p;
                    });
                }
            }
            ensured.add(namespace);
        } catch (KubernetesClientException e) {
            LOG.warnf(
                    "PodDisruptionBudget %s/%s not written (HTTP %d): %s; host pods there can be evicted meanwhile",
                    namespace, NAME, e.getCode(), e.getMessage());
        }
    }

    private static boolean sameSpec(PodDisruptionBudget have, PodDisruptionBudget want) {
        var h = have.getSpec();
        var w = want.getSpec();
        return h != null
                && Objects.equals(h.getMaxUnavailable(), w.getMaxUnavailable())
                && h.getMinAvailable() == null
                && Objects.equals(h.getSelector(), w.getSelector())
                && Objects.equals(h.getUnhealthyPodEvictionPolicy(), w.getUnhealthyPodEvictionPolicy());
    }

    /** Deletes the budget of a namespace left with no LlmDeployment. */
    void remove(String namespace) {
        ensured.remove(namespace);
        if (!config.disruptionBudget()) {
            return;
        }
        try {
            client.resources(PodDisruptionBudget.class)
                    .inNamespace(namespace)
                    .withName(NAME)
                    .delete();
        } catch (KubernetesClientException e) {
            LOG.warnf("PodDisruptionBudget %s/%s not deleted: %s", namespace, NAME, e.getMessage());
        }
    }
}
