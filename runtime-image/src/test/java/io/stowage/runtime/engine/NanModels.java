package io.stowage.runtime.engine;

import io.stowage.placement.gguf.GgufFile;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.GgufTensorInfo;
import io.stowage.placement.gguf.GgufWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Copies of stories260K-f32 whose tensor data holds NaNs, for the failure paths: they load fine (the header is
 * valid) and break only when they run.
 */
public final class NanModels {
    private NanModels() {}

    /** Every logits row is NaN: output_norm.weight is all NaN, so every request fails at its first token. */
    public static Path nanWeights(Path dir) {
        return copyWithNan(dir.resolve("stories260K-nan-weights.gguf"), "output_norm.weight", 0, -1);
    }

    /**
     * Only sequences that feed {@code token} fail: its row of token_embd.weight is NaN, so the step after that token
     * was generated (or prompted) gives NaN logits for that sequence alone.
     */
    public static Path nanToken(Path dir, int token) {
        try {
            GgufTensorInfo embd = GgufReader.readFile(TestModels.f32())
                    .tensor("token_embd.weight")
                    .orElseThrow();
            int width = (int) embd.dim(0);
            return copyWithNan(
                    dir.resolve("stories260K-nan-token-" + token + ".gguf"), "token_embd.weight", token * width, width);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The F32 model with floats [from, from + count) of one tensor set to NaN (count -1: to its end). */
    private static Path copyWithNan(Path target, String tensor, int from, int count) {
        try {
            Path source = TestModels.f32();
            GgufFile f = GgufReader.readFile(source);
            byte[] bytes = Files.readAllBytes(source);
            GgufWriter w = new GgufWriter();
            f.metadata().forEach((k, v) -> {
                if (!k.equals("general.alignment")) {
                    w.put(k, v);
                }
            });
            for (GgufTensorInfo t : f.tensors()) {
                byte[] data =
                        Arrays.copyOfRange(bytes, (int) t.absoluteOffset(), (int) (t.absoluteOffset() + t.byteSize()));
                if (t.name().equals(tensor)) {
                    ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
                    int end = count < 0 ? data.length / 4 : from + count;
                    for (int i = from; i < end; i++) {
                        b.putFloat(i * 4, Float.NaN);
                    }
                }
                w.addTensor(t.name(), t.type(), t.dims(), data);
            }
            w.write(target);
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
