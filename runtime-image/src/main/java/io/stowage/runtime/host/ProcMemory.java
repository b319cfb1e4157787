package io.stowage.runtime.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The process's resident (RSS) and proportional (PSS) set sizes from /proc/self, and the machine's RAM. */
public final class ProcMemory {
    private ProcMemory() {}

    /** VmRSS of /proc/self/status in bytes, or -1 where /proc is absent. */
    public static long rssBytes() {
        return kbField(Path.of("/proc/self/status"), "VmRSS:");
    }

    /** Pss of /proc/self/smaps_rollup in bytes (shared file pages split among the processes mapping them), or -1. */
    public static long pssBytes() {
        return kbField(Path.of("/proc/self/smaps_rollup"), "Pss:");
    }

    /** MemTotal of /proc/meminfo in bytes, lowered to the cgroup's memory.max in a container with a limit; -1 if unknown. */
    public static long machineRamBytes() {
        long total = kbField(Path.of("/proc/meminfo"), "MemTotal:");
        try {
            String max = Files.readString(Path.of("/sys/fs/cgroup/memory.max")).trim();
            if (!max.equals("max")) {
                long limit = Long.parseLong(max);
                return total > 0 ? Math.min(total, limit) : limit;
            }
        } catch (IOException | RuntimeException e) {
            // no cgroup v2 limit readable: the machine's RAM
        }
        return total;
    }

    static long kbField(Path file, String field) {
        try {
            for (String line : Files.readAllLines(file)) {
                if (line.startsWith(field)) {
                    String[] parts = line.substring(field.length()).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }
}
