package io.stowage.runtime.server;

import io.stowage.runtime.engine.Backend;
import io.stowage.runtime.engine.NativeEngineException;
import java.util.regex.Pattern;

/**
 * The device a host serves on, as {@code --device} names it: {@code cpu}, {@code cuda} (device 0), {@code cuda:N}, or
 * a GPU by its UUID ({@code GPU-…}, {@code MIG-…}, as {@code nvidia-smi -L} prints it).
 *
 * @param text the option as given
 * @param cuda whether it names a CUDA device
 * @param ordinal the CUDA device number (when named by number)
 * @param uuid the GPU's UUID (when named by UUID), else null
 */
record DeviceOption(String text, boolean cuda, int ordinal, String uuid) {
    private static final Pattern CUDA = Pattern.compile("cuda(?::(\\d{1,4}))?");
    private static final Pattern UUID = Pattern.compile("(GPU|MIG)-[0-9A-Za-z][0-9A-Za-z/-]{3,80}");

    static final DeviceOption CPU = new DeviceOption("cpu", false, 0, null);

    /** The option, or null when it names no device this runtime knows (the caller says what is accepted). */
    static DeviceOption parse(String text) {
        if (text.equals("cpu")) {
            return CPU;
        }
        var m = CUDA.matcher(text);
        if (m.matches()) {
            return new DeviceOption(text, true, m.group(1) == null ? 0 : Integer.parseInt(m.group(1)), null);
        }
        if (UUID.matcher(text).matches()) {
            return new DeviceOption(text, true, -1, text);
        }
        return null;
    }

    /** The accepted forms, for a usage message. */
    static final String FORMS = "cpu, cuda, cuda:N or a GPU UUID (GPU-..., MIG-...)";

    /**
     * Opens the device's backend.
     *
     * @throws StartupException (exit 1) when the device cannot be used here, with the core's one-line reason (e.g.
     *     this build has no CUDA backend, or no CUDA device is visible) and what to do instead
     */
    Backend open(int threads) {
        try {
            if (!cuda) {
                return Backend.cpu(threads);
            }
            return uuid != null ? Backend.cudaByUuid(uuid) : Backend.cuda(ordinal);
        } catch (NativeEngineException | IllegalArgumentException e) {
            throw new StartupException(
                    StartupException.FAILED,
                    "--device " + text + ": " + e.getMessage().replaceFirst("^stw_backend_init(_uuid)?: ", "")
                            + (cuda
                                    ? "; run the host with --device cpu, or on a node whose GPU this image supports"
                                    : ""),
                    e);
        }
    }
}
