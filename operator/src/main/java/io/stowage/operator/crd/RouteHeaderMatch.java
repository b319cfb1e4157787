package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;

/** A header equality of a route tier's match rules. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class RouteHeaderMatch {
    @Required
    @Size(max = 256)
    @Pattern("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    @JsonPropertyDescription("The header's name (compared case-insensitively), e.g. x-user-tier.")
    private String name;

    @Required
    @Size(max = 4096)
    @JsonPropertyDescription("The value it must have, exactly.")
    private String value;

    public String getName() {
        return name;
    }

    public void setName(String name) {
        this.name = name;
    }

    public String getValue() {
        return value;
    }

    public void setValue(String value) {
        this.value = value;
    }
}
