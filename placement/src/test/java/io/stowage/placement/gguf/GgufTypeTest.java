package io.stowage.placement.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** ggml type ids and block sizes, the exact tensor byte size, and reading a huge file by its header alone. */
class GgufTypeTest {

    /** id, elements per block, bytes per block: written out from ggml-common.h's block structs. */
    private static Map<GgufType, int[]> ggmlTraits() {
        int qk = 256; // QK_K
        int half = 2; // ggml_half
        Map<GgufType, int[]> m = new LinkedHashMap<>();
        m.put(GgufType.F32, new int[] {0, 1, 4});
        m.put(GgufType.F16, new int[] {1, 1, 2});
        m.put(GgufType.Q4_0, new int[] {2, 32, half + 32 / 2});
        m.put(GgufType.Q4_1, new int[] {3, 32, 2 * half + 32 / 2});
        m.put(GgufType.Q5_0, new int[] {6, 32, half + 4 + 32 / 2});
        m.put(GgufType.Q5_1, new int[] {7, 32, 2 * half + 4 + 32 / 2});
        m.put(GgufType.Q8_0, new int[] {8, 32, half + 32});
        m.put(GgufType.Q8_1, new int[] {9, 32, 2 * half + 32});
        m.put(GgufType.Q2_K, new int[] {10, qk, 2 * half + qk / 16 + qk / 4});
        m.put(GgufType.Q3_K, new int[] {11, qk, half + qk / 4 + qk / 8 + 12});
        m.put(GgufType.Q4_K, new int[] {12, qk, 2 * half + 12 + qk / 2});
        m.put(GgufType.Q5_K, new int[] {13, qk, 2 * half + 12 + qk / 2 + qk / 8});
        m.put(GgufType.Q6_K, new int[] {14, qk, half + qk / 16 + 3 * qk / 4});
        m.put(GgufType.Q8_K, new int[] {15, qk, 4 + qk + qk / 16 * 2});
        m.put(GgufType.IQ2_XXS, new int[] {16, qk, half + qk / 8 * 2});
        m.put(GgufType.IQ2_XS, new int[] {17, qk, half + qk / 8 * 2 + qk / 32});
        m.put(GgufType.IQ3_XXS, new int[] {18, qk, half + 3 * (qk / 8)});
        m.put(GgufType.IQ1_S, new int[] {19, qk, half + qk / 8 + qk / 16});
        m.put(GgufType.IQ4_NL, new int[] {20, 32, half + 32 / 2});
        m.put(GgufType.IQ3_S, new int[] {21, qk, half + 13 * (qk / 32) + qk / 64});
        m.put(GgufType.IQ2_S, new int[] {22, qk, half + qk / 4 + qk / 16});
        m.put(GgufType.IQ4_XS, new int[] {23, qk, half + 2 + qk / 64 + qk / 2});
        m.put(GgufType.I8, new int[] {24, 1, 1});
        m.put(GgufType.I16, new int[] {25, 1, 2});
        m.put(GgufType.I32, new int[] {26, 1, 4});
        m.put(GgufType.I64, new int[] {27, 1, 8});
        m.put(GgufType.F64, new int[] {28, 1, 8});
        m.put(GgufType.IQ1_M, new int[] {29, qk, qk / 8 + qk / 16 + qk / 32});
        m.put(GgufType.BF16, new int[] {30, 1, 2});
        m.put(GgufType.TQ1_0, new int[] {34, qk, half + qk / 64 + (qk - 4 * qk / 64) / 5});
        m.put(GgufType.TQ2_0, new int[] {35, qk, half + qk / 4});
        m.put(GgufType.MXFP4, new int[] {39, 32, 1 + 32 / 2});
        return m;
    }

    @Test
    void everyTypeHasGgmlsIdBlockSizeAndTypeSize() {
        Map<GgufType, int[]> traits = ggmlTraits();
        assertThat(traits.keySet()).containsExactly(GgufType.values());
        traits.forEach((type, t) -> {
            assertThat(new int[] {type.id(), type.blockSize(), type.typeSize()})
                    .as(type.name())
                    .containsExactly(t);
            assertThat(GgufType.fromId(t[0], "x")).isEqualTo(type);
        });
    }

    @Test
    void byteSizeIsRowsTimesBlocksPerRowTimesTypeSize() {
        assertThat(GgufType.Q4_K.byteSize("w", new long[] {4096, 14336})).isEqualTo(14336L * 16 * 144);
        assertThat(GgufType.Q8_0.byteSize("w", new long[] {64, 172})).isEqualTo(172L * 2 * 34);
        assertThat(GgufType.F32.byteSize("w", new long[] {3, 5, 7, 2})).isEqualTo(3L * 5 * 7 * 2 * 4);
        assertThat(GgufType.BF16.byteSize("w", new long[] {1L << 20, 1L << 20})).isEqualTo(1L << 41);
        assertThatThrownBy(() -> GgufType.Q6_K.byteSize("blk.0.ffn_down.weight", new long[] {172, 64}))
                .isInstanceOf(GgufFormatException.class)
                .hasMessage("tensor 'blk.0.ffn_down.weight': type Q6_K needs a row length (ne0) that is a multiple"
                        + " of 256, but ne0 is 172");
    }

    @Test
    void unknownIdsNameTheTensor() {
        for (long id : new long[] {4, 5, 31, 32, 33, 36, 37, 38, 40, -1, 1L << 40}) {
            assertThatThrownBy(() -> GgufType.fromId(id, "blk.3.attn_q.weight"))
                    .isInstanceOf(GgufFormatException.class)
                    .hasMessageStartingWith("tensor 'blk.3.attn_q.weight': unknown ggml type id " + id);
        }
        assertThat(Arrays.stream(GgufType.values())
                        .mapToInt(GgufType::id)
                        .distinct()
                        .count())
                .isEqualTo(GgufType.values().length);
    }

    @Test
    void aFourGibibyteModelIsDescribedFromItsHeaderAlone(@TempDir Path dir) throws IOException {
        // A sparse file: a real header, then 4 GiB of (unwritten) tensor data no byte array could hold.
        long data = 1L << 32;
        byte[] header = RawGguf.header(3, 1, 1)
                .kvStr("general.architecture", "llama")
                .tensor("token_embd.weight", new long[] {1L << 16, 1L << 16}, GgufType.I8.id(), 0)
                .pad(32)
                .bytes();
        Path p = dir.resolve("huge.gguf");
        Files.write(p, header);
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(header.length + data);
        }

        GgufFile g = GgufReader.builder().firstChunkBytes(4096).build().read(p);

        assertThat(g.fileSize()).isEqualTo(header.length + data);
        assertThat(g.tensors()).singleElement().satisfies(t -> {
            assertThat(t.byteSize()).isEqualTo(data);
            assertThat(t.absoluteEnd()).isEqualTo(g.fileSize());
        });
    }
}
