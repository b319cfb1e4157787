package io.stowage.runtime.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class HostMetricsTest {
    @Test
    void tagValuesHaveNoControlCharactersAndABoundedLength() {
        assertThat(HostMetrics.tagValue("llama-3.1-8b")).isEqualTo("llama-3.1-8b");
        assertThat(HostMetrics.tagValue("a\u0000b\nc\u2028d\u007fe")).isEqualTo("a_b_c_d_e");
        assertThat(HostMetrics.tagValue("x".repeat(10_000))).hasSize(HostMetrics.MAX_TAG_CHARS);
        // never half a surrogate pair at the cut
        String emoji = "\uD83D\uDE00";
        String cut = HostMetrics.tagValue("x".repeat(HostMetrics.MAX_TAG_CHARS - 1) + emoji);
        assertThat(cut).hasSize(HostMetrics.MAX_TAG_CHARS - 1).doesNotContain("\uD83D");
    }
}
