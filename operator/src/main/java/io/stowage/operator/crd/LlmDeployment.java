package io.stowage.operator.crd;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn.Type;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.Kind;
import io.fabric8.kubernetes.model.annotation.Plural;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Singular;
import io.fabric8.kubernetes.model.annotation.Version;

/** An LLM served by Stowage: a model file, its replicas, their context, and where they may run. */
@Group(LlmDeployment.GROUP)
@Version(LlmDeployment.VERSION)
@Kind(LlmDeployment.KIND)
@Plural(LlmDeployment.PLURAL)
@Singular("llmdeployment")
@ShortNames({"llmd", "llm"})
@AdditionalPrinterColumn(name = "Ready", jsonPath = ".status.ready", type = Type.STRING)
@AdditionalPrinterColumn(name = "Replicas", jsonPath = ".spec.replicas", type = Type.INTEGER)
@AdditionalPrinterColumn(name = "Model", jsonPath = ".status.model.summary", type = Type.STRING)
@AdditionalPrinterColumn(name = "Quant", jsonPath = ".status.model.quantization", type = Type.STRING)
@AdditionalPrinterColumn(name = "Mem/Replica", jsonPath = ".status.memory.perReplica", type = Type.STRING)
@AdditionalPrinterColumn(name = "Status", jsonPath = ".status.phase", type = Type.STRING)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = Type.DATE)
public class LlmDeployment extends CustomResource<LlmDeploymentSpec, LlmDeploymentStatus> implements Namespaced {
    public static final String GROUP = "stowage.io";
    public static final String VERSION = "v1alpha1";
    public static final String KIND = "LlmDeployment";
    public static final String PLURAL = "llmdeployments";
    public static final String API_VERSION = GROUP + "/" + VERSION;
    public static final String CRD_NAME = PLURAL + "." + GROUP;

    public LlmDeployment() {}

    public LlmDeployment(String namespace, String name, LlmDeploymentSpec spec) {
        getMetadata().setNamespace(namespace);
        getMetadata().setName(name);
        setSpec(spec);
    }

    /** {@code namespace/name}: the planner's deployment id and the host API's deployment key. */
    public String key() {
        return getMetadata().getNamespace() + "/" + getMetadata().getName();
    }

    /** The OpenAI model name: the spec's, or the resource name. */
    public String servedModelName() {
        String n = getSpec() == null ? null : getSpec().getServedModelName();
        return n == null || n.isBlank() ? getMetadata().getName() : n;
    }

    @Override
    protected LlmDeploymentStatus initStatus() {
        return new LlmDeploymentStatus();
    }
}
