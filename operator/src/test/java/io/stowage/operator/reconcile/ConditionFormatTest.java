package io.stowage.operator.reconcile;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Conditions as a real API server's metav1.Condition schema takes them: reason pattern and message length. */
class ConditionFormatTest {
    static final String REASON = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$";

    @Test
    void validReasonsPassUnchangedAndOthersAreMadeValid() {
        assertThat(StatusAggregator.conditionReason("ModelUnreadable")).isEqualTo("ModelUnreadable");
        assertThat(StatusAggregator.conditionReason("Host_Failed:OOM")).isEqualTo("Host_Failed:OOM");
        assertThat(StatusAggregator.conditionReason("404 Not-Found."))
                .matches(REASON)
                .isEqualTo("NotFound");
        assertThat(StatusAggregator.conditionReason("ends with colon:"))
                .matches(REASON)
                .isEqualTo("endswithcolon");
        assertThat(StatusAggregator.conditionReason("--")).isEqualTo("Unknown");
        assertThat(StatusAggregator.conditionReason(null)).isEqualTo("Unknown");
        assertThat(StatusAggregator.conditionReason("A".repeat(2000)))
                .hasSize(1024)
                .matches(REASON);
    }

    @Test
    void longMessagesAreCutToTheLimitAndSaySo() {
        String longer = "x".repeat(StatusAggregator.MAX_MESSAGE + 10);
        String cut = StatusAggregator.conditionMessage(longer);
        assertThat(cut).hasSize(StatusAggregator.MAX_MESSAGE).endsWith("(cut; kubectl get events has the rest)");
        assertThat(StatusAggregator.conditionMessage("short")).isEqualTo("short");
        assertThat(StatusAggregator.conditionMessage(null)).isEmpty();
    }
}
