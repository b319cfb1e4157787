package io.stowage.operator.reconcile;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.host.HostAdminClient;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Adds and removes the operator's finalizer with optimistic locking: a JSON merge patch of
 * {@code metadata.finalizers} that carries the {@code resourceVersion} the new list was computed from, so the API
 * server answers 409 rather than overwrite a finalizer another controller added in between; on 409 the resource is
 * read again and the change recomputed, a bounded number of times.
 */
final class Finalizers {
    /** Tries per change; each conflict costs one GET. */
    static final int ATTEMPTS = 3;

    private Finalizers() {}

    /** d with {@code finalizer} added, as the API server returned it; null when d is gone. */
    static LlmDeployment add(KubernetesClient client, LlmDeployment d, String finalizer) {
        return change(client, d, finalizer, true);
    }

    /** d with {@code finalizer} removed; null when d is gone (as it is once the last finalizer goes). */
    static LlmDeployment remove(KubernetesClient client, LlmDeployment d, String finalizer) {
        return change(client, d, finalizer, false);
    }

    private static LlmDeployment change(KubernetesClient client, LlmDeployment d, String finalizer, boolean add) {
        LlmDeployment cur = d;
        for (int attempt = 1; ; attempt++) {
            List<String> have = cur.getMetadata().getFinalizers() == null
                    ? List.of()
                    : cur.getMetadata().getFinalizers();
            if (have.contains(finalizer) == add) {
                return cur;
            }
            List<String> want = new ArrayList<>(have);
            if (add) {
                want.add(finalizer);
            } else {
                want.removeIf(finalizer::equals);
            }
            String body = patch(cur.getMetadata().getResourceVersion(), want);
            try {
                // On the object itself (not by name), so that the client sends the patch without a GET first.
                return client.resource(cur).patch(PatchContext.of(PatchType.JSON_MERGE), body);
            } catch (KubernetesClientException e) {
                if (e.getCode() == 404) {
                    return null;
                }
                if (e.getCode() != 409 || attempt >= ATTEMPTS) {
                    throw e;
                }
                cur = resource(client, cur).get();
                if (cur == null) {
                    return null;
                }
            }
        }
    }

    /**
     * {@code {"metadata":{"resourceVersion":rv,"finalizers":[...]}}}: the precondition travels with the change (the
     * API server checks a resourceVersion given in a patch and answers 409 when it is not the current one).
     */
    static String patch(String resourceVersion, List<String> finalizers) {
        Map<String, Object> metadata = new LinkedHashMap<>();
        metadata.put("resourceVersion", resourceVersion);
        // An empty list is written as null, which a merge patch reads as "remove the field".
        metadata.put("finalizers", finalizers.isEmpty() ? null : finalizers);
        try {
            return HostAdminClient.JSON.writeValueAsString(Map.of("metadata", metadata));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a list of strings did not serialise", e);
        }
    }

    private static Resource<LlmDeployment> resource(KubernetesClient client, LlmDeployment d) {
        return client.resources(LlmDeployment.class)
                .inNamespace(d.getMetadata().getNamespace())
                .withName(d.getMetadata().getName());
    }
}
