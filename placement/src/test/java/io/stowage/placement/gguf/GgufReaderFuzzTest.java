package io.stowage.placement.gguf;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Jazzer fuzz test of the reader: whatever the bytes, reading them (and describing the model when they parse) either
 * succeeds or throws {@link GgufFormatException}; any other exception or error is a finding.
 *
 * <p>The seeds under {@code GgufReaderFuzzTestInputs/} are small files written by {@link GgufWriter} plus past
 * findings ({@code finding-*}). Without {@code JAZZER_FUZZ} the test replays them; the surefire
 * configuration sets {@code JAZZER_FUZZ=1} so CI also fuzzes, bounded by {@code maxExecutions} (about 15 s on the
 * 2-core build machine) and, on a slow or loaded machine, by {@code maxDuration}. A finding is written to
 * {@code target/jazzer/crash-*}; copy it into the inputs folder to keep it as a regression seed.
 */
class GgufReaderFuzzTest {

    @FuzzTest(maxExecutions = 400_000, maxDuration = "40s")
    void readerThrowsNothingButItsOwnFormatException(byte[] data) {
        GgufFile file;
        try {
            file = GgufReader.readBytes(data);
        } catch (GgufFormatException expected) {
            return;
        }
        try {
            ModelDescription.from(file).shape();
        } catch (GgufFormatException expected) {
            // a parseable header that is not a complete model
        }
    }
}
