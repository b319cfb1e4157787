package io.stowage.operator.crd;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Size;
import io.fabric8.generator.annotation.ValidationRule;

/** The match rules of a route tier. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
        value = "!has(self.minPromptChars) || !has(self.maxPromptChars) || self.minPromptChars <= self.maxPromptChars",
        message = "match.minPromptChars must be <= match.maxPromptChars")
public class RouteMatchSpec {
    @Min(0)
    @JsonPropertyDescription(
            "The prompt (for chat: every message's content together) has at least this many" + " characters.")
    private Integer minPromptChars;

    @Min(0)
    @JsonPropertyDescription("The prompt has at most this many characters.")
    private Integer maxPromptChars;

    @JsonPropertyDescription("A request header that must equal a value, e.g. a user tier set by the gateway.")
    private RouteHeaderMatch header;

    @Size(max = 1024)
    @JsonPropertyDescription("A Java regular expression that must be found in the last user message (for"
            + " completions: the prompt), e.g. (?i)summari[sz]e.")
    private String lastUserMessage;

    @Min(1)
    @Max(86_400_000)
    @JsonPropertyDescription("Try this tier only while the mean latency of its recent answers (exponentially"
            + " weighted) is at most this many milliseconds: a slow, overloaded tier is skipped until it recovers.")
    private Long latencyTargetMillis;

    public Integer getMinPromptChars() {
        return minPromptChars;
    }

    public void setMinPromptChars(Integer minPromptChars) {
        this.minPromptChars = minPromptChars;
    }

    public Integer getMaxPromptChars() {
        return maxPromptChars;
    }

    public void setMaxPromptChars(Integer maxPromptChars) {
        this.maxPromptChars = maxPromptChars;
    }

    public RouteHeaderMatch getHeader() {
        return header;
    }

    public void setHeader(RouteHeaderMatch header) {
        this.header = header;
    }

    public String getLastUserMessage() {
        return lastUserMessage;
    }

    public void setLastUserMessage(String lastUserMessage) {
        this.lastUserMessage = lastUserMessage;
    }

    public Long getLatencyTargetMillis() {
        return latencyTargetMillis;
    }

    public void setLatencyTargetMillis(Long latencyTargetMillis) {
        this.latencyTargetMillis = latencyTargetMillis;
    }
}
