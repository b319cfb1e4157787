package io.stowage.placement.gguf;

import java.util.Arrays;

/**
 * One tensor as described in a GGUF header: name, dimensions in ggml {@code ne} order (fastest first), type, where its
 * data lies, and its exact byte and element counts.
 *
 * @param relativeOffset offset from the start of the data section, as stored in the file
 * @param absoluteOffset offset from the start of the file
 */
public record GgufTensorInfo(
        String name,
        long[] dims,
        GgufType type,
        long relativeOffset,
        long absoluteOffset,
        long byteSize,
        long elementCount) {

    public GgufTensorInfo {
        dims = dims.clone();
    }

    @Override
    public long[] dims() {
        return dims.clone();
    }

    /** The number of dimensions. */
    public int rank() {
        return dims.length;
    }

    /** ne[i], or 1 past the last dimension (as ggml pads shapes). */
    public long dim(int i) {
        return i < dims.length ? dims[i] : 1;
    }

    /** The offset one past the last byte of this tensor's data, from the start of the file. */
    public long absoluteEnd() {
        return absoluteOffset + byteSize;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufTensorInfo t
                && name.equals(t.name)
                && Arrays.equals(dims, t.dims)
                && type == t.type
                && relativeOffset == t.relativeOffset
                && absoluteOffset == t.absoluteOffset
                && byteSize == t.byteSize
                && elementCount == t.elementCount;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(dims);
    }

    @Override
    public String toString() {
        return name + " " + type + " " + Arrays.toString(dims) + " @" + absoluteOffset + " (" + byteSize + " bytes)";
    }
}
