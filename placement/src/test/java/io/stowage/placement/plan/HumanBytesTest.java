package io.stowage.placement.plan;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class HumanBytesTest {
    @Test
    void bytesReadInBinaryUnitsWithOneDecimal() {
        assertThat(HumanBytes.format(512)).isEqualTo("512 B");
        assertThat(HumanBytes.format(1536)).isEqualTo("1.5 KiB");
        assertThat(HumanBytes.format(300L << 20)).isEqualTo("300.0 MiB");
        assertThat(HumanBytes.format(Fixtures.gib(5.2))).isEqualTo("5.2 GiB");
    }

    @Test
    void comparedFiguresGetEnoughDecimalsToDiffer() {
        String[] f = HumanBytes.formatPair(Fixtures.gib(3.14), Fixtures.gib(3.13));
        assertThat(f).containsExactly("3.14 GiB", "3.13 GiB");
        assertThat(HumanBytes.formatPair(Fixtures.gib(2), Fixtures.gib(2))).containsExactly("2.0 GiB", "2.0 GiB");
    }
}
