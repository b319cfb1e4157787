package io.stowage.placement.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Files written by {@link GgufWriter} read back identical: every metadata type, nested arrays, versions, alignments. */
class GgufRoundTripTest {

    @TempDir
    Path tmp;

    /** One entry of every scalar type at its extremes, and arrays of every element type including nested ones. */
    static Map<String, GgufValue> everyValueType() {
        Map<String, GgufValue> m = new LinkedHashMap<>();
        m.put("u8.min", GgufValue.uint8(0));
        m.put("u8.max", GgufValue.uint8(255));
        m.put("i8.min", GgufValue.int8(-128));
        m.put("i8.max", GgufValue.int8(127));
        m.put("u16.max", GgufValue.uint16(65535));
        m.put("i16.min", GgufValue.int16(-32768));
        m.put("u32.max", GgufValue.uint32(4_294_967_295L));
        m.put("i32.min", GgufValue.int32(Integer.MIN_VALUE));
        m.put("u64.max", GgufValue.uint64(-1L)); // 2^64-1 as raw bits
        m.put("i64.min", GgufValue.int64(Long.MIN_VALUE));
        m.put("f32", GgufValue.float32(3.14159f));
        m.put("f32.nan", GgufValue.float32(Float.NaN));
        m.put("f32.neg_inf", GgufValue.float32(Float.NEGATIVE_INFINITY));
        m.put("f64", GgufValue.float64(-2.718281828459045));
        m.put("bool.t", GgufValue.bool(true));
        m.put("bool.f", GgufValue.bool(false));
        m.put("str.empty", GgufValue.string(""));
        m.put("str.utf8", GgufValue.string("▁héllo 世界 🦙"));
        m.put("arr.u8", GgufValue.array(GgufArray.ofIntegers(GgufValueType.UINT8, 0, 1, 255)));
        m.put("arr.i8", GgufValue.array(GgufArray.ofIntegers(GgufValueType.INT8, -128, 0, 127)));
        m.put("arr.u16", GgufValue.array(GgufArray.ofIntegers(GgufValueType.UINT16, 0, 65535)));
        m.put("arr.i16", GgufValue.array(GgufArray.ofIntegers(GgufValueType.INT16, -32768, 32767)));
        m.put("arr.u32", GgufValue.array(GgufArray.ofIntegers(GgufValueType.UINT32, 0, 4_294_967_295L)));
        m.put("arr.i32", GgufValue.array(GgufArray.ofIntegers(GgufValueType.INT32, -1, 7, Integer.MAX_VALUE)));
        m.put("arr.u64", GgufValue.array(GgufArray.ofIntegers(GgufValueType.UINT64, 0, -1L)));
        m.put("arr.i64", GgufValue.array(GgufArray.ofIntegers(GgufValueType.INT64, Long.MIN_VALUE, Long.MAX_VALUE)));
        m.put("arr.f32", GgufValue.array(GgufArray.ofFloat32(0f, -0f, 1.5f, Float.MAX_VALUE)));
        m.put("arr.f64", GgufValue.array(GgufArray.ofFloat64(Double.MIN_VALUE, 1e300)));
        m.put("arr.bool", GgufValue.array(GgufArray.ofBool(true, false, true)));
        m.put("arr.str", GgufValue.array(GgufArray.ofStrings("a", "", "Ġthe", "<|im_end|>")));
        m.put("arr.empty", GgufValue.array(GgufArray.ofStrings()));
        m.put(
                "arr.nested",
                GgufValue.array(GgufArray.ofArrays(
                        GgufArray.ofIntegers(GgufValueType.INT32, 1, 2, 3),
                        GgufArray.ofStrings("x", "y"),
                        GgufArray.ofArrays(GgufArray.ofFloat32(1f), GgufArray.ofBool()))));
        return m;
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3})
    void everyMetadataTypeReadsBackIdenticalInBothVersions(int version) {
        Map<String, GgufValue> meta = everyValueType();
        byte[] bytes = new GgufWriter().version(version).putAll(meta).toBytes();

        GgufFile f = GgufReader.readBytes(bytes);

        assertThat(f.version()).isEqualTo(version);
        assertThat(f.metadata()).containsExactlyEntriesOf(meta);
        assertThat(f.tensors()).isEmpty();
        assertThat(f.fileSize()).isEqualTo(bytes.length);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 8, 32, 64, 4096})
    void tensorsLandOnTheAlignmentAndTheirBytesReadBack(int alignment) {
        Random rnd = new Random(alignment);
        GgufWriter w = new GgufWriter().alignment(alignment).putString("general.architecture", "test");
        Map<String, byte[]> data = new LinkedHashMap<>();
        int i = 0;
        for (GgufType type : GgufType.values()) {
            long[] dims = {type.blockSize() * (1 + i % 3), 1 + i % 2, 1 + i % 4};
            byte[] b = new byte[(int) type.byteSize("t", dims)];
            rnd.nextBytes(b);
            String name = "t" + i++ + "." + type;
            w.addTensor(name, type, dims, b);
            data.put(name, b);
        }
        byte[] file = w.toBytes();

        GgufFile f = GgufReader.readBytes(file);

        assertThat(f.alignment()).isEqualTo(alignment);
        assertThat(f.dataOffset() % alignment).isZero();
        assertThat(f.dataOffset()).isGreaterThanOrEqualTo(f.headerSize()).isLessThan(f.headerSize() + alignment);
        assertThat(f.tensors()).hasSize(GgufType.values().length);
        for (GgufTensorInfo t : f.tensors()) {
            assertThat(t.absoluteOffset() % alignment).as(t.name()).isZero();
            assertThat(Arrays.copyOfRange(file, (int) t.absoluteOffset(), (int) t.absoluteEnd()))
                    .as(t.name())
                    .isEqualTo(data.get(t.name()));
        }
    }

    @Test
    void tensorInfosKeepNameShapeTypeAndCounts() {
        GgufFile f = GgufReader.readBytes(new GgufWriter()
                .addTensor("a", GgufType.Q4_K, new long[] {256, 3}, new byte[3 * 144])
                .addTensor("b", GgufType.I32, new long[] {5, 1, 2, 3}, new byte[5 * 6 * 4])
                .toBytes());

        GgufTensorInfo a = f.tensor("a").orElseThrow();
        assertThat(a.dims()).containsExactly(256, 3);
        assertThat(a.type()).isEqualTo(GgufType.Q4_K);
        assertThat(a.elementCount()).isEqualTo(768);
        assertThat(a.byteSize()).isEqualTo(432);
        assertThat(a.relativeOffset()).isZero();
        GgufTensorInfo b = f.tensor("b").orElseThrow();
        assertThat(b.rank()).isEqualTo(4);
        assertThat(b.elementCount()).isEqualTo(30);
        assertThat(b.relativeOffset()).isEqualTo(448); // 432 rounded up to 32
        assertThat(b.absoluteOffset()).isEqualTo(f.dataOffset() + 448);
    }

    @Test
    void fileAndByteSourcesAgreeAndFileReadsOnlyTheHeader(@TempDir Path dir) throws IOException {
        // A 3 MiB tensor after a small header: the file reader's window must stay far below the file size.
        byte[] big = new byte[3 << 20];
        new Random(1).nextBytes(big);
        GgufWriter w = TestFiles.smallModel().addTensor("big", GgufType.I8, new long[] {big.length}, big);
        Path p = dir.resolve("m.gguf");
        w.write(p);

        GgufFile fromFile = GgufReader.builder().firstChunkBytes(64).build().read(p);
        GgufFile fromBytes = GgufReader.readBytes(Files.readAllBytes(p));

        assertThat(fromFile).isEqualTo(fromBytes);
        assertThat(fromFile.fileSize()).isEqualTo(Files.size(p));
        assertThat(Files.readAllBytes(p)).isEqualTo(w.toBytes());
    }

    @Test
    void readerOfAWrittenRealFileReproducesItsHeader() throws IOException {
        // Rewriting stories260K's metadata and tensors through the writer gives back the same header.
        byte[] original = TestFiles.bytes(TestFiles.Q8_0);
        GgufFile f = GgufReader.readBytes(original);
        GgufWriter w = new GgufWriter().putAll(f.metadata());
        for (GgufTensorInfo t : f.tensors()) {
            w.addTensor(t.name(), t.type(), t.dims(), GgufRealFilesTest.slice(original, t));
        }
        byte[] rewritten = w.toBytes();

        GgufFile again = GgufReader.readBytes(rewritten);

        assertThat(again.metadata()).isEqualTo(f.metadata());
        assertThat(again.tensors()).isEqualTo(f.tensors());
        assertThat(Arrays.copyOf(rewritten, (int) f.dataOffset()))
                .isEqualTo(Arrays.copyOf(original, (int) f.dataOffset()));
    }

    @Test
    void writerQuantizesFloatTensorsWithTheReferenceQuantizer() {
        float[] values = new float[256 * 2];
        for (int i = 0; i < values.length; i++) values[i] = (float) Math.sin(i * 0.1);
        byte[] file = new GgufWriter()
                .addTensor("a", GgufType.Q6_K, new long[] {256, 2}, values)
                .addTensor("b", GgufType.BF16, new long[] {512}, values)
                .toBytes();

        GgufFile f = GgufReader.readBytes(file);

        for (GgufTensorInfo t : f.tensors()) {
            byte[] stored = GgufRealFilesTest.slice(file, t);
            assertThat(stored).as(t.name()).isEqualTo(GgufQuantizer.quantize(t.type(), values));
            assertThat(GgufQuantizer.dequantize(t.type(), stored)).hasSize(512);
        }
    }

    @Test
    void writerRefusesWhatCouldNotBeRead() {
        GgufWriter w = new GgufWriter().putString("k", "v");
        assertThatThrownBy(() -> w.putString("k", "again")).hasMessageContaining("'k' was already added");
        assertThatThrownBy(() -> w.addTensor("t", GgufType.Q8_0, new long[] {33}, new byte[34]))
                .hasMessageContaining("multiple of 32");
        assertThatThrownBy(() -> w.addTensor("t", GgufType.F32, new long[] {4}, new byte[15]))
                .hasMessageContaining("needs 16 bytes, got 15");
        assertThatThrownBy(() -> w.addTensor("t", GgufType.F32, new long[] {1, 1, 1, 1, 1}, new byte[4]))
                .hasMessageContaining("5 dimensions");
        assertThatThrownBy(() -> new GgufWriter().alignment(24)).hasMessageContaining("power of two");
        assertThatThrownBy(() -> new GgufWriter().version(1)).hasMessageContaining("must be 2 or 3");
        assertThatThrownBy(() -> GgufValue.uint8(256)).hasMessageContaining("outside [0, 255]");
        assertThatThrownBy(() -> GgufArray.ofIntegers(GgufValueType.INT16, 40000))
                .hasMessageContaining("outside [-32768, 32767]");
    }

    @Test
    void typedGettersNameTheMissingOrMisTypedKey() {
        GgufFile f = GgufReader.readBytes(new GgufWriter()
                .putString("general.architecture", "llama")
                .putUInt64("big", -1L)
                .putInt32("n", 5)
                .toBytes());

        assertThatThrownBy(() -> f.getLong("llama.block_count"))
                .isInstanceOf(GgufFormatException.class)
                .hasMessage("metadata key 'llama.block_count' is missing (architecture 'llama', 3 keys)");
        assertThatThrownBy(() -> f.getLong("general.architecture"))
                .hasMessage("metadata key 'general.architecture' has type string, expected integer");
        assertThatThrownBy(() -> f.getString("n")).hasMessage("metadata key 'n' has type int32, expected string");
        assertThatThrownBy(() -> f.getLong("big")).hasMessageContaining("18446744073709551615, larger than 2^63-1");
        assertThatThrownBy(() -> f.getArray("n")).hasMessageContaining("expected array");
        assertThat(f.getInt("n")).isEqualTo(5);
        assertThat(f.findLong("absent")).isEmpty();
        assertThat(f.findString("general.architecture")).contains("llama");
    }

    @Test
    void randomMetadataRoundTrips() {
        Random rnd = new Random(42);
        for (int round = 0; round < 200; round++) {
            Map<String, GgufValue> meta = new LinkedHashMap<>();
            int n = rnd.nextInt(20);
            for (int i = 0; i < n; i++) {
                meta.put("k" + i, randomValue(rnd, 0));
            }
            GgufWriter w = new GgufWriter().version(2 + rnd.nextInt(2)).putAll(meta);
            assertThat(GgufReader.readBytes(w.toBytes()).metadata()).containsExactlyEntriesOf(meta);
        }
    }

    static GgufValue randomValue(Random rnd, int depth) {
        GgufValueType[] all = GgufValueType.values();
        GgufValueType t = all[rnd.nextInt(depth > 2 ? all.length - 4 : all.length)];
        return switch (t) {
            case UINT8 -> GgufValue.uint8(rnd.nextInt(256));
            case INT8 -> GgufValue.int8(rnd.nextInt(256) - 128);
            case UINT16 -> GgufValue.uint16(rnd.nextInt(65536));
            case INT16 -> GgufValue.int16(rnd.nextInt(65536) - 32768);
            case UINT32 -> GgufValue.uint32(rnd.nextLong(1L << 32));
            case INT32 -> GgufValue.int32(rnd.nextInt());
            case FLOAT32 -> GgufValue.float32(rnd.nextFloat());
            case BOOL -> GgufValue.bool(rnd.nextBoolean());
            case STRING -> GgufValue.string("s" + rnd.nextLong());
            case ARRAY -> GgufValue.array(randomArray(rnd, depth + 1));
            case UINT64 -> GgufValue.uint64(rnd.nextLong());
            case INT64 -> GgufValue.int64(rnd.nextLong());
            case FLOAT64 -> GgufValue.float64(rnd.nextDouble());
        };
    }

    private static GgufArray randomArray(Random rnd, int depth) {
        int n = rnd.nextInt(5);
        return switch (rnd.nextInt(depth > 2 ? 4 : 5)) {
            case 0 -> GgufArray.ofIntegers(GgufValueType.INT64, rnd.longs(n).toArray());
            case 1 -> GgufArray.ofFloat64(rnd.doubles(n).toArray());
            case 2 ->
                GgufArray.ofStrings(rnd.ints(n).mapToObj(Integer::toString).toArray(String[]::new));
            case 3 ->
                GgufArray.ofIntegers(
                        GgufValueType.UINT8, rnd.ints(n, 0, 256).asLongStream().toArray());
            default -> {
                List<GgufArray> inner = new ArrayList<>();
                for (int i = 0; i < n; i++) inner.add(randomArray(rnd, depth + 1));
                yield GgufArray.ofArrays(inner.toArray(GgufArray[]::new));
            }
        };
    }
}
