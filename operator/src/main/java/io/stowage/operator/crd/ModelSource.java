package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;

/** Where a GGUF model file lives, and optionally its expected content digest. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
        value = "self.uri.matches('^(https|http|file|pvc|s3|hf)://')",
        message = "model.uri must start with https://, http://, file://, pvc://, s3:// or hf://")
public class ModelSource {
    @Required
    @Pattern("^[a-z0-9]+://\\S+$")
    // The CEL rule above reads it: the API server refuses a rule whose estimated cost, bounded by the string's
    // maxLength, exceeds its limit.
    @Size(max = 4096)
    @JsonPropertyDescription("The GGUF file: https://, http://, file:///path on the node, pvc://claim/path,"
            + " s3://bucket/key or hf://org/repo/file.gguf.")
    private String uri;

    @Pattern("^[a-f0-9]{64}$")
    @JsonPropertyDescription("The file's SHA-256 as 64 lowercase hex digits; the host refuses a file that differs.")
    private String sha256;

    public ModelSource() {}

    public ModelSource(String uri, String sha256) {
        this.uri = uri;
        this.sha256 = sha256;
    }

    public String getUri() {
        return uri;
    }

    public void setUri(String uri) {
        this.uri = uri;
    }

    public String getSha256() {
        return sha256;
    }

    public void setSha256(String sha256) {
        this.sha256 = sha256;
    }
}
