package io.stowage.placement.gguf;

/** A ggml tensor type as stored in GGUF: its id, how many elements one block holds, and how many bytes one block takes. */
public enum GgufType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),
    Q4_1(3, 32, 20),
    Q5_0(6, 32, 22),
    Q5_1(7, 32, 24),
    Q8_0(8, 32, 34),
    Q8_1(9, 32, 36),
    Q2_K(10, 256, 84),
    Q3_K(11, 256, 110),
    Q4_K(12, 256, 144),
    Q5_K(13, 256, 176),
    Q6_K(14, 256, 210),
    Q8_K(15, 256, 292),
    IQ2_XXS(16, 256, 66),
    IQ2_XS(17, 256, 74),
    IQ3_XXS(18, 256, 98),
    IQ1_S(19, 256, 50),
    IQ4_NL(20, 32, 18),
    IQ3_S(21, 256, 110),
    IQ2_S(22, 256, 82),
    IQ4_XS(23, 256, 136),
    I8(24, 1, 1),
    I16(25, 1, 2),
    I32(26, 1, 4),
    I64(27, 1, 8),
    F64(28, 1, 8),
    IQ1_M(29, 256, 56),
    BF16(30, 1, 2),
    TQ1_0(34, 256, 54),
    TQ2_0(35, 256, 66),
    MXFP4(39, 32, 17);

    private static final GgufType[] BY_ID = new GgufType[64];

    static {
        for (GgufType t : values()) {
            BY_ID[t.id] = t;
        }
    }

    private final int id;
    private final int blockSize;
    private final int typeSize;

    GgufType(int id, int blockSize, int typeSize) {
        this.id = id;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
    }

    /** The ggml id ({@code enum ggml_type}). */
    public int id() {
        return id;
    }

    /** Elements per block. */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes per block. */
    public int typeSize() {
        return typeSize;
    }

    /** The type with this ggml id, or a {@link GgufFormatException} naming the tensor and the id. */
    public static GgufType fromId(long id, String tensorName) {
        GgufType t = id >= 0 && id < BY_ID.length ? BY_ID[(int) id] : null;
        if (t == null) {
            throw new GgufFormatException("tensor '" + tensorName + "': unknown ggml type id " + id
                    + " (known ids: 0-3, 6-30, 34, 35, 39); the file may need a newer Stowage");
        }
        return t;
    }

    /**
     * Exact bytes of a tensor of this type with these dimensions (ggml {@code ne} order): rows × (ne0 / blockSize) ×
     * typeSize. Checks that ne0 is a multiple of the block size and that nothing overflows.
     */
    public long byteSize(String tensorName, long[] dims) {
        if (dims.length == 0) {
            throw new GgufFormatException("tensor '" + tensorName + "': has no dimensions");
        }
        long ne0 = dims[0];
        if (ne0 % blockSize != 0) {
            throw new GgufFormatException("tensor '" + tensorName + "': type " + this
                    + " needs a row length (ne0) that is" + " a multiple of " + blockSize + ", but ne0 is " + ne0);
        }
        try {
            long rows = 1;
            for (int i = 1; i < dims.length; i++) {
                rows = Math.multiplyExact(rows, dims[i]);
            }
            return Math.multiplyExact(Math.multiplyExact(rows, ne0 / blockSize), (long) typeSize);
        } catch (ArithmeticException e) {
            throw new GgufFormatException("tensor '" + tensorName + "': byte size of dims "
                    + java.util.Arrays.toString(dims) + " as " + this + " overflows 64 bits");
        }
    }
}
