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

/**
 * A name clients put in the OpenAI {@code model} field, served by a confidence cascade over LlmDeployments of the same
 * namespace: the router (the runtime image's {@code router} mode, or local mode) tries the tiers in order.
 */
@Group(LlmDeployment.GROUP)
@Version(LlmDeployment.VERSION)
@Kind(LlmRoute.KIND)
@Plural(LlmRoute.PLURAL)
@Singular("llmroute")
@ShortNames({"llmr"})
@AdditionalPrinterColumn(name = "Route", jsonPath = ".spec.routeName", type = Type.STRING)
@AdditionalPrinterColumn(name = "Tiers", jsonPath = ".status.tiers", type = Type.STRING)
@AdditionalPrinterColumn(name = "Status", jsonPath = ".status.phase", type = Type.STRING)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = Type.DATE)
public class LlmRoute extends CustomResource<LlmRouteSpec, LlmRouteStatus> implements Namespaced {
    public static final String KIND = "LlmRoute";
    public static final String PLURAL = "llmroutes";
    public static final String CRD_NAME = PLURAL + "." + LlmDeployment.GROUP;

    public LlmRoute() {}

    public LlmRoute(String namespace, String name, LlmRouteSpec spec) {
        getMetadata().setNamespace(namespace);
        getMetadata().setName(name);
        setSpec(spec);
    }

    /** The name clients send: the spec's, or the resource name. */
    public String routeName() {
        String n = getSpec() == null ? null : getSpec().getRouteName();
        return n == null || n.isBlank() ? getMetadata().getName() : n;
    }

    @Override
    protected LlmRouteStatus initStatus() {
        return new LlmRouteStatus();
    }
}
