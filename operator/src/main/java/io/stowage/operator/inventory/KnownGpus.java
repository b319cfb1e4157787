package io.stowage.operator.inventory;

import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * The framebuffer of well-known NVIDIA products, in MiB as {@code nvidia-smi} reports it, for nodes without GPU
 * Feature Discovery labels (GKE names its accelerators {@code nvidia-l4}, {@code nvidia-tesla-a100}, …) when DCGM
 * gives no framebuffer total either. The reserve keeps the headroom these nominal figures lack.
 */
public final class KnownGpus {
    private record Product(Pattern name, long mib) {}

    // First match wins: the more specific pattern of a family comes first. Names are upper-cased with every run of
    // other characters turned into one '-': "NVIDIA H100 80GB HBM3" -> "NVIDIA-H100-80GB-HBM3".
    private static final List<Product> PRODUCTS = List.of(
            p("B200", 183_359),
            p("H200", 143_771),
            p("H100-NVL", 95_830),
            p("H100", 81_559),
            p("A100-(SXM4-|PCIE-)?80GB", 81_920),
            p("A100", 40_960),
            p("L40S?", 46_068),
            p("A10G?", 23_028),
            p("L4", 23_034),
            p("T4", 15_360),
            p("V100-(SXM2-|PCIE-)?32GB", 32_768),
            p("V100", 16_384),
            p("P100", 16_384),
            p("P4", 7_680),
            p("K80", 11_441));

    private KnownGpus() {}

    private static Product p(String token, long mib) {
        // A whole token of the name: "L4" is not "L40S", "A10" is not "A100".
        return new Product(Pattern.compile("(^|-)" + token + "(-|$)"), mib);
    }

    /**
     * The memory of a product in bytes, or 0 when the name is not known. MIG devices and vGPU (GRID) profiles have
     * their own sizes and are never guessed from the board's name.
     */
    public static long bytesOf(String product) {
        if (product == null || product.isBlank()) {
            return 0;
        }
        String n = product.toUpperCase(Locale.ROOT).replaceAll("[^A-Z0-9]+", "-");
        if (n.contains("-MIG-") || n.startsWith("GRID-") || n.contains("-GRID-")) {
            return 0;
        }
        for (Product p : PRODUCTS) {
            if (p.name().matcher(n).find()) {
                return p.mib() << 20;
            }
        }
        return 0;
    }
}
