package io.stowage.placement.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A hostile corpus built in the test: truncations at every byte, impossible counts and lengths, bad offsets, bad
 * alignment, unknown types and bad dimensions. Each must be a {@link GgufFormatException} with a message naming what
 * is wrong, never another exception and never a large allocation.
 */
class GgufHostileInputTest {

    private static AbstractThrowableAssert<?, ? extends Throwable> assertRefused(byte[] file) {
        return assertThatThrownBy(() -> GgufReader.readBytes(file)).isExactlyInstanceOf(GgufFormatException.class);
    }

    /** A valid file with one F32 tensor of 4 elements, built by hand, so tests can vary one field at a time. */
    private static byte[] oneTensor(long[] dims, long type, long offset, int dataBytes) {
        return RawGguf.header(3, 1, 1)
                .kvStr("general.architecture", "llama")
                .tensor("w", dims, type, offset)
                .pad(32)
                .zeros(dataBytes)
                .bytes();
    }

    @Test
    void theHandBuiltBaselineIsValid() {
        GgufFile f = GgufReader.readBytes(oneTensor(new long[] {4}, 0, 0, 16));
        assertThat(f.tensors())
                .singleElement()
                .extracting(GgufTensorInfo::byteSize)
                .isEqualTo(16L);
    }

    @Test
    void everyTruncationOfAValidFileIsRefusedWithTheFormatException() {
        byte[] full = TestFiles.smallModel().toBytes();
        GgufReader.readBytes(full); // the whole file is valid
        for (int n = 0; n < full.length; n++) {
            byte[] prefix = Arrays.copyOf(full, n);
            final int len = n;
            assertThatThrownBy(() -> GgufReader.readBytes(prefix))
                    .as("prefix of %d bytes", len)
                    .isExactlyInstanceOf(GgufFormatException.class)
                    .message()
                    .satisfiesAnyOf(
                            m -> assertThat(m).contains("the file (" + String.format("%,d", len) + " bytes)"),
                            m -> assertThat(m).contains("but the file has " + String.format("%,d", len) + " bytes"),
                            m -> assertThat(m).contains("remain in the file"));
        }
    }

    @Test
    void everyTruncationAlsoFailsCleanlyThroughTheFileSource(@TempDir Path dir) throws IOException {
        byte[] full = TestFiles.smallModel().toBytes();
        GgufReader small = GgufReader.builder().firstChunkBytes(16).build();
        Path p = dir.resolve("t.gguf");
        for (int n = 0; n < full.length; n += 7) {
            Files.write(p, Arrays.copyOf(full, n));
            assertThatThrownBy(() -> small.read(p)).isExactlyInstanceOf(GgufFormatException.class);
        }
    }

    @Test
    void notGgufIsRefusedByItsMagic() {
        assertRefused("<!DOCTYPE html><html>".getBytes())
                .hasMessage(
                        "not a GGUF file: the first 4 bytes are 3c 21 44 4f (\"<!DO\"), expected 47 47 55 46 (\"GGUF\")");
    }

    @Test
    void versionOneIsRefusedClearly() {
        assertRefused(RawGguf.header(1, 0, 0).bytes()).hasMessageContaining("GGUF version 1 is not supported");
    }

    @Test
    void bigEndianFilesAreDetected() {
        byte[] be = new RawGguf().raw('G', 'G', 'U', 'F', 0, 0, 0, 3).zeros(16).bytes();
        assertRefused(be).hasMessageContaining("big-endian GGUF file (version bytes 00 00 00 03)");
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 4, 0xFFFF})
    void unknownVersionsAreRefused(long version) {
        assertRefused(RawGguf.header(version, 0, 0).bytes())
                .hasMessage("GGUF version " + version + " is not supported; versions 2 and 3 are");
    }

    @Test
    void aHugeStringLengthFailsWithoutAllocating() {
        byte[] f = RawGguf.header(3, 0, 1).u64(1L << 60).zeros(40).bytes();
        assertRefused(f)
                .hasMessage("metadata entry #0: key of 1152921504606846976 bytes at byte 32 runs past the end of the"
                        + " file (72 bytes): the file is truncated or corrupt");
    }

    @Test
    void aStringLengthAboveTwoToTheSixtyThreeIsRefused() {
        byte[] f = RawGguf.header(3, 0, 1).u64(-5L).zeros(40).bytes();
        assertRefused(f).hasMessageContaining("key length 18446744073709551611 at byte 24 is larger than any file");
    }

    @ParameterizedTest
    @ValueSource(longs = {1L << 40, 1L << 62, -1L})
    void hugeArrayCountsFailBeforeAllocating(long count) {
        for (GgufValueType element : GgufValueType.values()) {
            byte[] f = RawGguf.header(3, 0, 1)
                    .str("arr")
                    .u32(GgufValueType.ARRAY.id())
                    .u32(element.id())
                    .u64(count)
                    .zeros(64)
                    .bytes();
            assertRefused(f).as("%s x %d", element, count).hasMessageContaining("metadata key 'arr'");
        }
    }

    @Test
    void hugeTensorAndKeyCountsAreBoundedByTheFileSize() {
        assertRefused(RawGguf.header(3, 1L << 40, 0).bytes())
                .hasMessage("GGUF header: tensor count 1099511627776 at byte 8 needs at least 32 bytes each,"
                        + " but only 8 bytes remain in the file");
        assertRefused(RawGguf.header(3, 0, -1L).zeros(100).bytes())
                .hasMessageContaining("metadata key/value count 18446744073709551615 at byte 16");
    }

    @Test
    void tensorDataPastTheEndIsRefusedWithBothNumbers() {
        byte[] f = oneTensor(new long[] {4}, 0, 0, 8); // 16 bytes needed, 8 present
        int end = f.length;
        assertRefused(f)
                .hasMessage(String.format(
                        "tensor 'w': data ends at byte %,d but the file has %,d bytes", end - 8 + 16, end));
        assertRefused(oneTensor(new long[] {4}, 0, 1L << 40, 16)).hasMessageContaining("tensor 'w': data ends at byte");
        assertRefused(oneTensor(new long[] {4}, 0, Long.MAX_VALUE - Long.MAX_VALUE % 32, 16))
                .hasMessageContaining("overflows 2^63-1");
        assertRefused(oneTensor(new long[] {4}, 0, -32L, 16)).hasMessageContaining("larger than 2^63-1");
    }

    @Test
    void misalignedOffsetsAreRefused() {
        assertRefused(oneTensor(new long[] {4}, 0, 16, 64))
                .hasMessage("tensor 'w': data offset 16 is not a multiple of the alignment 32");
    }

    @Test
    void overlappingTensorsAreRefused() {
        byte[] f = RawGguf.header(3, 2, 0)
                .tensor("a", new long[] {16}, 0, 0)
                .tensor("b", new long[] {16}, 0, 32) // a spans 64 bytes
                .pad(32)
                .zeros(128)
                .bytes();
        assertRefused(f)
                .hasMessageContaining("tensors 'a' (bytes")
                .hasMessageContaining("and 'b' (bytes")
                .hasMessageContaining("overlap");
    }

    @Test
    void duplicateTensorNamesAndKeysAreRefused() {
        byte[] tensors = RawGguf.header(3, 2, 0)
                .tensor("a", new long[] {8}, 0, 0)
                .tensor("a", new long[] {8}, 0, 32)
                .pad(32)
                .zeros(64)
                .bytes();
        assertRefused(tensors).hasMessage("tensor 'a' appears twice in the tensor infos");
        byte[] keys = RawGguf.header(3, 0, 2).kvU32("k", 1).kvU32("k", 2).bytes();
        assertRefused(keys).hasMessage("metadata key 'k' appears twice (entries at bytes 24 and 41)");
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 3, 48, 1L << 32})
    void badAlignmentValuesAreRefused(long alignment) {
        byte[] f = RawGguf.header(3, 0, 1)
                .str("general.alignment")
                .u32(GgufValueType.UINT64.id())
                .u64(alignment)
                .bytes();
        assertRefused(f).hasMessageContaining("'general.alignment' is " + alignment + ", must be a power of two");
    }

    @Test
    void aNonIntegerAlignmentIsRefused() {
        byte[] f = RawGguf.header(3, 0, 1).kvStr("general.alignment", "32").bytes();
        assertRefused(f).hasMessageContaining("'general.alignment' has type string");
    }

    @Test
    void aValidNonDefaultAlignmentIsHonoured() {
        byte[] f = RawGguf.header(3, 1, 1)
                .kvU32("general.alignment", 256)
                .tensor("w", new long[] {4}, 0, 256)
                .pad(256)
                .zeros(512)
                .bytes();
        GgufFile g = GgufReader.readBytes(f);
        assertThat(g.alignment()).isEqualTo(256);
        assertThat(g.dataOffset()).isEqualTo(256);
        assertThat(g.tensors().get(0).absoluteOffset()).isEqualTo(512);
    }

    @ParameterizedTest
    @ValueSource(longs = {4, 5, 31, 32, 33, 36, 40, 0xFFFFFFFFL})
    void unknownTensorTypesNameTheTensorAndTheId(long type) {
        assertRefused(oneTensor(new long[] {32}, type, 0, 1024))
                .hasMessageStartingWith("tensor 'w': unknown ggml type id " + type + " ");
    }

    @Test
    void unknownMetadataValueTypesAreRefused() {
        byte[] f = RawGguf.header(3, 0, 1).str("k").u32(13).u32(0).bytes();
        assertRefused(f).hasMessage("metadata key 'k': value type 13 at byte 33 is unknown (known: 0 to 12)");
    }

    @Test
    void badDimensionsAreRefused() {
        assertRefused(oneTensor(new long[] {4, 0}, 0, 0, 64))
                .hasMessage("tensor 'w': dimension 1 is 0, must be between 1 and 2^63-1");
        assertRefused(oneTensor(new long[] {-1L}, 0, 0, 64))
                .hasMessage("tensor 'w': dimension 0 is 18446744073709551615, must be between 1 and 2^63-1");
        assertRefused(oneTensor(new long[] {1L << 32, 1L << 32}, 0, 0, 64))
                .hasMessage("tensor 'w': element count of dims [4294967296, 4294967296] overflows 2^63-1");
        assertRefused(oneTensor(new long[] {1L << 31, 1L << 31}, 0, 0, 64))
                .hasMessageContaining("tensor 'w': byte size of dims [2147483648, 2147483648] as F32 overflows");
        assertRefused(oneTensor(new long[] {1, 1, 1, 1, 1}, 0, 0, 64))
                .hasMessage("tensor 'w': number of dimensions is 5, must be between 1 and 4");
        assertRefused(oneTensor(new long[] {}, 0, 0, 64))
                .hasMessage("tensor 'w': number of dimensions is 0, must be between 1 and 4");
        assertRefused(oneTensor(new long[] {48}, GgufType.Q4_0.id(), 0, 64))
                .hasMessage("tensor 'w': type Q4_0 needs a row length (ne0) that is a multiple of 32, but ne0 is 48");
    }

    @Test
    void boolsOtherThanZeroOrOneAreRefused() {
        byte[] f = RawGguf.header(3, 0, 1)
                .str("b")
                .u32(GgufValueType.BOOL.id())
                .u8(2)
                .bytes();
        assertRefused(f).hasMessage("metadata key 'b': bool value at byte 37 is 2, must be 0 or 1");
    }

    @Test
    void deeplyNestedArraysAreRefusedBeforeTheStackIs() {
        RawGguf r = RawGguf.header(3, 0, 1).str("deep").u32(GgufValueType.ARRAY.id());
        for (int i = 0; i < 10_000; i++) {
            r.u32(GgufValueType.ARRAY.id()).u64(1);
        }
        assertRefused(r.bytes()).hasMessageContaining("arrays nested 9 deep");
    }

    @Test
    void aHeaderLargerThanTheCapIsRefusedNamingTheCap(@TempDir Path dir) throws IOException {
        Path p = dir.resolve("big-header.gguf");
        new GgufWriter().putString("blob", "x".repeat(100_000)).write(p);
        GgufReader capped = GgufReader.builder()
                .firstChunkBytes(1024)
                .maxHeaderBytes(65_536)
                .build();

        assertThatThrownBy(() -> capped.read(p))
                .isExactlyInstanceOf(GgufFormatException.class)
                .hasMessageContaining("past the header cap of 65,536 bytes")
                .hasMessageContaining("maxHeaderBytes");
        assertThatCode(() -> GgufReader.builder().firstChunkBytes(1024).build().read(p))
                .doesNotThrowAnyException();
    }

    @Test
    void aRealFileWithEveryByteFlippedInItsFirstKilobyteNeverThrowsAnythingElse() {
        byte[] f = TestFiles.bytes(TestFiles.Q8_0);
        for (int i = 0; i < 1024; i++) {
            f[i] ^= (byte) 0xFF;
            try {
                GgufReader.readBytes(f);
            } catch (GgufFormatException expected) {
                assertThat(expected.getMessage()).isNotBlank();
            } finally {
                f[i] ^= (byte) 0xFF;
            }
        }
    }
}
