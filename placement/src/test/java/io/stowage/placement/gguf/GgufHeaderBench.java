package io.stowage.placement.gguf;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/**
 * A small benchmark (a main, not a test): header read times of the real test files and reference quantizer
 * throughput. Run after {@code ./mvnw -pl placement test-compile}:
 * {@code java -cp placement/target/classes:placement/target/test-classes io.stowage.placement.gguf.GgufHeaderBench}.
 */
public final class GgufHeaderBench {

    private GgufHeaderBench() {}

    public static void main(String[] args) throws Exception {
        for (String name : new String[] {TestFiles.Q8_0, TestFiles.QWEN3_VOCAB}) {
            Path p = TestFiles.path(name);
            GgufReader reader = GgufReader.create();
            GgufFile f = reader.read(p);
            double ms = medianMillis(21, () -> reader.read(p));
            System.out.printf(
                    "read(Path) %-26s header %,10d B of %,10d B, %3d tensors, %2d keys: median %.2f ms%n",
                    name,
                    f.headerSize(),
                    f.fileSize(),
                    f.tensors().size(),
                    f.metadata().size(),
                    ms);
        }
        Random rnd = new Random(1);
        float[] x = new float[1 << 20];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        for (GgufType t : new GgufType[] {GgufType.Q8_0, GgufType.Q4_0, GgufType.Q4_K, GgufType.Q6_K}) {
            byte[] q = GgufQuantizer.quantize(t, x);
            double qms = medianMillis(7, () -> GgufQuantizer.quantize(t, x));
            double dms = medianMillis(7, () -> GgufQuantizer.dequantize(t, q));
            System.out.printf(
                    "%-5s 1 Mi values: quantize %.1f ms (%.0f M values/s), dequantize %.1f ms%n",
                    t, qms, x.length / qms / 1e3, dms);
        }
    }

    private interface Body {
        Object run() throws Exception;
    }

    private static double medianMillis(int runs, Body body) throws Exception {
        double[] t = new double[runs];
        for (int i = 0; i < runs; i++) {
            long s = System.nanoTime();
            body.run();
            t[i] = (System.nanoTime() - s) / 1e6;
        }
        Arrays.sort(t);
        return t[runs / 2];
    }
}
