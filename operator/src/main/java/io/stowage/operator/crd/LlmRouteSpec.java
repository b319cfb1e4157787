package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import java.util.ArrayList;
import java.util.List;

/** What an LlmRoute asks: the name clients send and the ordered tiers of its cascade. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class LlmRouteSpec {
    @Size(max = 253)
    @Pattern("^\\S+$")
    @JsonPropertyDescription("The name clients put in the OpenAI model field; defaults to metadata.name. It must"
            + " differ from every LlmDeployment's servedModelName behind the same router.")
    private String routeName;

    @Required
    @Size(min = 1, max = 16)
    @JsonPropertyDescription("The tiers in order: a request goes to the first tier whose match rules hold, and on"
            + " down the list while a tier's cascade rule finds its answer not confident enough. The last tier"
            + " normally has no cascade rule: its answer always stands.")
    private List<RouteTierSpec> tiers = new ArrayList<>();

    public LlmRouteSpec() {}

    public LlmRouteSpec(String routeName, List<RouteTierSpec> tiers) {
        this.routeName = routeName;
        this.tiers = tiers;
    }

    public String getRouteName() {
        return routeName;
    }

    public void setRouteName(String routeName) {
        this.routeName = routeName;
    }

    public List<RouteTierSpec> getTiers() {
        return tiers;
    }

    public void setTiers(List<RouteTierSpec> tiers) {
        this.tiers = tiers;
    }
}
