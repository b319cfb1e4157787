package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** The model as read from its GGUF header. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ModelStatus {
    @JsonPropertyDescription("general.architecture, e.g. llama.")
    private String architecture;

    @JsonPropertyDescription("general.name when the file has one.")
    private String name;

    @JsonPropertyDescription("Parameter count (sum of tensor elements).")
    private Long parameters;

    @JsonPropertyDescription("Parameters in human units, e.g. 7.2B.")
    private String parametersHuman;

    @JsonPropertyDescription("The dominant tensor type, e.g. Q8_0 or Q4_K.")
    private String quantization;

    @JsonPropertyDescription("The model's trained context length in tokens.")
    private Long contextLength;

    @JsonPropertyDescription("Architecture and size in one phrase, for kubectl, e.g. llama 7.2B.")
    private String summary;

    @JsonPropertyDescription(
            "The content key the weights are shared by (sha256 when given, else derived from the" + " URI).")
    private String digest;

    public String getArchitecture() {
        return architecture;
    }

    public void setArchitecture(String architecture) {
        this.architecture = architecture;
    }

    public String getName() {
        return name;
    }

    public void setName(String name) {
        this.name = name;
    }

    public Long getParameters() {
        return parameters;
    }

    public void setParameters(Long parameters) {
        this.parameters = parameters;
    }

    public String getParametersHuman() {
        return parametersHuman;
    }

    public void setParametersHuman(String parametersHuman) {
        this.parametersHuman = parametersHuman;
    }

    public String getQuantization() {
        return quantization;
    }

    public void setQuantization(String quantization) {
        this.quantization = quantization;
    }

    public Long getContextLength() {
        return contextLength;
    }

    public void setContextLength(Long contextLength) {
        this.contextLength = contextLength;
    }

    public String getSummary() {
        return summary;
    }

    public void setSummary(String summary) {
        this.summary = summary;
    }

    public String getDigest() {
        return digest;
    }

    public void setDigest(String digest) {
        this.digest = digest;
    }
}
