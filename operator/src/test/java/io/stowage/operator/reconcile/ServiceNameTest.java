package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** A deployment's Service name: a DNS-1035 label derived deterministically from any valid CR name. */
class ServiceNameTest {
    static final String DNS_1035 = "[a-z]([-a-z0-9]*[a-z0-9])?";

    @Test
    void dotsBecomeDashes() {
        assertThat(StatusAggregator.serviceName("llama-3.1-8b"))
                .isEqualTo("llama-3-1-8b-" + Labels.hash("llama-3.1-8b", 12))
                .matches(DNS_1035);
        // two names that map to the same text keep apart
        assertThat(StatusAggregator.serviceName("llama-3.1-8b"))
                .isNotEqualTo(StatusAggregator.serviceName("llama-3-1-8b"));
        assertThat(StatusAggregator.serviceName("llama-3-1-8b")).isEqualTo("llama-3-1-8b");
    }

    @Test
    void aValidNameIsKept() {
        assertThat(StatusAggregator.serviceName("chat")).isEqualTo("chat");
    }

    @Test
    void aLeadingDigitGetsALetterPrefix() {
        String s = StatusAggregator.serviceName("3b.model");
        assertThat(s).matches(DNS_1035).startsWith("llm-3b-model-");
    }

    @Test
    void aLongNameIsShortenedWithAHashAndStaysDistinctAndStable() {
        String a = "a".repeat(40) + "." + "b".repeat(60);
        String b = "a".repeat(40) + "." + "b".repeat(59) + "c";
        String sa = StatusAggregator.serviceName(a);
        assertThat(sa).matches(DNS_1035).hasSizeLessThanOrEqualTo(63);
        assertThat(sa).isEqualTo(StatusAggregator.serviceName(a));
        assertThat(sa).isNotEqualTo(StatusAggregator.serviceName(b));
        assertThat(sa).endsWith("-" + Labels.hash(a, 12));
    }

    @Test
    void everyShapeOfCrNameGivesALabel() {
        for (String n : new String[] {"x", "a.b.c", "9", "0.1", "a-.b", "m." + "z".repeat(250), "Q-wen2.5"}) {
            assertThat(StatusAggregator.serviceName(n)).as(n).matches(DNS_1035).hasSizeLessThanOrEqualTo(63);
        }
    }
}
