package io.stowage.hostapi;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Reads the UUIDs of the GPUs a container was given from the environment the NVIDIA device plugin sets.
 *
 * <p>The device plugin (with its default {@code DEVICE_ID_STRATEGY=uuid}) sets {@code NVIDIA_VISIBLE_DEVICES} to
 * the comma-separated UUIDs of the devices it allocated: {@code GPU-<uuid>} for a whole (or time-sliced) GPU,
 * {@code MIG-<uuid>} for a MIG device (drivers before R470 wrote {@code MIG-GPU-<uuid>/<gi>/<ci>}). CUDA also
 * accepts UUIDs in {@code CUDA_VISIBLE_DEVICES}. Indices ({@code 0,1}), {@code all}, {@code none} and {@code void}
 * name no particular GPU and give no UUID; CUDA images set {@code NVIDIA_VISIBLE_DEVICES=all} by default.
 */
public final class GpuUuids {
    public static final String NVIDIA_VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES";
    public static final String CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES";

    private GpuUuids() {}

    /**
     * The GPU UUIDs named by {@code NVIDIA_VISIBLE_DEVICES}, else by {@code CUDA_VISIBLE_DEVICES}, in order; empty
     * when neither names a UUID.
     */
    public static List<String> fromEnvironment(Map<String, String> env) {
        List<String> nvidia = parse(env.get(NVIDIA_VISIBLE_DEVICES));
        return nvidia.isEmpty() ? parse(env.get(CUDA_VISIBLE_DEVICES)) : nvidia;
    }

    /** The one GPU UUID of the environment, or null when it names none. */
    public static String single(Map<String, String> env) {
        List<String> all = fromEnvironment(env);
        return all.isEmpty() ? null : all.get(0);
    }

    /** The UUIDs in a comma-separated device list; entries that are not UUIDs (indices, keywords) are skipped. */
    public static List<String> parse(String list) {
        List<String> out = new ArrayList<>();
        if (list == null) {
            return out;
        }
        for (String raw : list.split(",")) {
            String id = raw.strip();
            if (isUuid(id) && !out.contains(id)) {
                out.add(id);
            }
        }
        return out;
    }

    /** Whether {@code id} is a GPU or MIG device UUID ({@code GPU-…}, {@code MIG-…}), not an index or keyword. */
    public static boolean isUuid(String id) {
        if (id == null) {
            return false;
        }
        String upper = id.toUpperCase(Locale.ROOT);
        String rest;
        if (upper.startsWith("GPU-")) {
            rest = id.substring(4);
        } else if (upper.startsWith("MIG-")) {
            rest = id.substring(4);
        } else {
            return false;
        }
        // A UUID body: hex digits and dashes (the legacy MIG form adds "GPU-<uuid>/<gi>/<ci>").
        return !rest.isEmpty() && rest.matches("(?i)(GPU-)?[0-9a-f][0-9a-f-]{7,}(/\\d+/\\d+)?");
    }

    /** Whether {@code id} names a MIG device rather than a whole GPU. */
    public static boolean isMig(String id) {
        return id != null && id.toUpperCase(Locale.ROOT).startsWith("MIG-");
    }
}
