package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** What the router reports about an LlmRoute. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class LlmRouteStatus {
    @JsonPropertyDescription("The generation of the spec this status describes.")
    private Long observedGeneration;

    @JsonPropertyDescription("Serving, or Invalid (a tier names no LlmDeployment of the namespace; see message).")
    private String phase;

    @JsonPropertyDescription("The tiers at a glance, e.g. small (mean >= 0.6) -> large.")
    private String tiers;

    @JsonPropertyDescription("Why the route is not serving, when it is not.")
    private String message;

    @JsonPropertyDescription("The router's OpenAI base URL to send this route's requests to.")
    private String endpoint;

    public Long getObservedGeneration() {
        return observedGeneration;
    }

    public void setObservedGeneration(Long observedGeneration) {
        this.observedGeneration = observedGeneration;
    }

    public String getPhase() {
        return phase;
    }

    public void setPhase(String phase) {
        this.phase = phase;
    }

    public String getTiers() {
        return tiers;
    }

    public void setTiers(String tiers) {
        this.tiers = tiers;
    }

    public String getMessage() {
        return message;
    }

    public void setMessage(String message) {
        this.message = message;
    }

    public String getEndpoint() {
        return endpoint;
    }

    public void setEndpoint(String endpoint) {
        this.endpoint = endpoint;
    }
}
