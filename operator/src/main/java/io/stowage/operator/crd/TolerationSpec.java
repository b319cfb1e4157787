package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;

/** A Kubernetes toleration of a node taint. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class TolerationSpec {
    @JsonPropertyDescription("The taint key; empty with operator Exists tolerates every taint.")
    private String key;

    @Pattern("^(Equal|Exists)$")
    @JsonPropertyDescription("Equal (default) or Exists.")
    private String operator;

    @JsonPropertyDescription("The taint value to match with operator Equal.")
    private String value;

    @Pattern("^(NoSchedule|PreferNoSchedule|NoExecute)$")
    @JsonPropertyDescription("The taint effect to match; empty matches all effects.")
    private String effect;

    public TolerationSpec() {}

    public TolerationSpec(String key, String operator, String value, String effect) {
        this.key = key;
        this.operator = operator;
        this.value = value;
        this.effect = effect;
    }

    public String getKey() {
        return key;
    }

    public void setKey(String key) {
        this.key = key;
    }

    public String getOperator() {
        return operator;
    }

    public void setOperator(String operator) {
        this.operator = operator;
    }

    public String getValue() {
        return value;
    }

    public void setValue(String value) {
        this.value = value;
    }

    public String getEffect() {
        return effect;
    }

    public void setEffect(String effect) {
        this.effect = effect;
    }
}
