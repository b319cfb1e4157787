package io.stowage.runtime.host;

import static org.assertj.core.api.Assertions.assertThat;

import io.stowage.hostapi.ModelAssignment;
import io.stowage.runtime.engine.NativeModel;
import io.stowage.runtime.engine.TestModels;
import org.junit.jupiter.api.Test;

/**
 * A host's state counts the bytes of its models while the device thread may free a removed one: a freed model
 * counts 0 instead of failing the state (found in CI: an assignment answered 500 with "model … is closed").
 */
class LoadedModelBytesTest {
    @Test
    void aModelFreedWhileItsBytesAreReadCountsNothingInsteadOfFailing() throws Exception {
        LoadedModel m =
                new LoadedModel(new ModelAssignment("q8", TestModels.q8().toString(), null, 0, 0));
        assertThat(m.weightBytes()).as("not loaded yet").isZero();
        NativeModel weights = NativeModel.open(TestModels.q8());
        m.model = weights;
        assertThat(m.weightBytes()).isPositive();
        weights.close();
        assertThat(m.weightBytes()).as("freed").isZero();
        assertThat(m.workspaceBytes()).isZero();
    }
}
