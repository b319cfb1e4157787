package io.stowage.operator.reconcile;

import io.stowage.operator.crd.LlmDeployment;
import io.stowage.operator.host.HostAdminClient;
import io.stowage.placement.manifest.LlmDeploymentManifest;
import io.stowage.placement.manifest.ManifestReader;
import io.stowage.placement.manifest.PlannerInput;
import io.stowage.placement.memory.MemoryModel;
import io.stowage.placement.memory.ModelShape;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The operator's way from an LlmDeployment to the planner: the resource is read by the same {@link ManifestReader}
 * rules as a manifest file and planned by {@link PlannerInput#of}, so {@code ./stowage plan} and local mode give
 * the same planner input for the same YAML.
 */
public final class SpecInput {
    private SpecInput() {}

    /**
     * The resource as a placement manifest, with the shared defaults applied (unset fields stay unset on the way).
     *
     * @throws io.stowage.placement.manifest.ManifestException naming the resource and the field
     */
    public static LlmDeploymentManifest manifest(LlmDeployment d) {
        Map<String, Object> metadata = new LinkedHashMap<>();
        metadata.put("name", d.getMetadata().getName());
        metadata.put("namespace", d.getMetadata().getNamespace());
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("apiVersion", LlmDeployment.API_VERSION);
        doc.put("kind", LlmDeployment.KIND);
        doc.put("metadata", metadata);
        // The spec classes omit nulls, so a field the user left out reaches the reader as absent.
        doc.put("spec", HostAdminClient.JSON.convertValue(d.getSpec(), Map.class));
        List<String> warnings = new ArrayList<>();
        return ManifestReader.fromObject("LlmDeployment " + d.key(), null, doc, warnings);
    }

    /** The planner input of the resource for a model of {@code shape}. */
    public static PlannerInput of(LlmDeployment d, ModelShape shape, MemoryModel memory) {
        return PlannerInput.of(manifest(d), shape, memory);
    }
}
