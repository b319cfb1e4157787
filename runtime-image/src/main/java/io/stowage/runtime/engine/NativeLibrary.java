package io.stowage.runtime.engine;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Loads the JNI library of the inference core once per JVM, from {@code -Dstowage.native.path} or else from the
 * jar's {@code native/<os>-<arch>/} directory, and explains every failed attempt.
 *
 * <p>The {@code <os>-<arch>} convention is shared with native/src/jni/CMakeLists.txt, which copies the
 * libraries there. From the jar, the libraries are extracted to a fresh temporary directory, loaded, and deleted
 * at once (the mapping stays valid after the file is unlinked), so nothing is left behind.
 */
public final class NativeLibrary {
    /** A file (libstowage_jni.so) or a directory holding it (and libstowage.so, when the core is shared). */
    public static final String PATH_PROPERTY = "stowage.native.path";
    /** Where to extract the libraries; default java.io.tmpdir (which must not be mounted noexec). */
    public static final String TMPDIR_PROPERTY = "stowage.native.tmpdir";

    static final String JNI_LIBRARY = "stowage_jni";
    /** The core library the JNI library links against when the core is built shared; loaded first when present. */
    static final String CORE_LIBRARY = "stowage";

    private static final Object LOCK = new Object();
    private static volatile boolean loaded;
    private static UnsatisfiedLinkError failure;

    private NativeLibrary() {}

    /** Loads the library if that has not happened yet; throws the same explained error on every call if it failed. */
    public static void load() {
        if (loaded) {
            return;
        }
        synchronized (LOCK) {
            if (loaded) {
                return;
            }
            if (failure != null) {
                throw failure;
            }
            try {
                load(System.getProperty(PATH_PROPERTY), "native/" + platform(), tmpDir());
                loaded = true;
            } catch (UnsatisfiedLinkError e) {
                failure = e;
                throw e;
            }
        }
    }

    /** Whether the library is (or can now be) loaded; never throws. */
    public static boolean isAvailable() {
        return unavailabilityCause() == null;
    }

    /** Why the library cannot be loaded, or null when it is loaded. */
    public static UnsatisfiedLinkError unavailabilityCause() {
        try {
            load();
            return null;
        } catch (UnsatisfiedLinkError e) {
            return e;
        }
    }

    /** The native core's version string. */
    public static String version() {
        load();
        return NativeEngine.version();
    }

    /** The CPU features the core detected and the kernel set it chose, e.g. "avx2 fma f16c (kernels: avx2)". */
    public static String cpuFeatures() {
        load();
        return NativeEngine.cpuFeatures();
    }

    /** {@code <os>-<arch>} of this JVM, as CMake names it: e.g. linux-x86_64, linux-aarch64, darwin-aarch64. */
    public static String platform() {
        return os(System.getProperty("os.name", "")) + "-" + arch(System.getProperty("os.arch", ""));
    }

    static String os(String osName) {
        String n = osName.toLowerCase(Locale.ROOT);
        if (n.startsWith("linux")) {
            return "linux";
        }
        if (n.startsWith("mac") || n.startsWith("darwin")) {
            return "darwin";
        }
        if (n.startsWith("windows")) {
            return "windows";
        }
        return n.replaceAll("[^a-z0-9]", "");
    }

    static String arch(String osArch) {
        String a = osArch.toLowerCase(Locale.ROOT);
        return switch (a) {
            case "amd64", "x86_64", "x64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> a.replaceAll("[^a-z0-9_]", "");
        };
    }

    private static Path tmpDir() {
        String dir = System.getProperty(TMPDIR_PROPERTY);
        return Path.of(dir != null ? dir : System.getProperty("java.io.tmpdir"));
    }

    /**
     * Tries the explicit path when given (only it: a wrong explicit setting must not silently load another build),
     * else the class path resource directory, else java.library.path; throws an error that lists every attempt.
     */
    static void load(String explicitPath, String resourceDir, Path tmpDir) {
        List<String> attempts = new ArrayList<>();
        if (explicitPath != null && !explicitPath.isBlank()) {
            if (tryExplicit(Path.of(explicitPath), attempts)) {
                return;
            }
        } else {
            if (tryResource(resourceDir, tmpDir, attempts)) {
                return;
            }
            try {
                System.loadLibrary(JNI_LIBRARY);
                return;
            } catch (UnsatisfiedLinkError e) {
                attempts.add("System.loadLibrary(\"" + JNI_LIBRARY + "\") with java.library.path="
                        + System.getProperty("java.library.path") + ": " + e.getMessage());
            }
        }
        StringBuilder message = new StringBuilder("stowage: could not load the native inference library ")
                .append(mapName(JNI_LIBRARY))
                .append(" for ")
                .append(platform())
                .append(" (os.name=")
                .append(System.getProperty("os.name"))
                .append(", os.arch=")
                .append(System.getProperty("os.arch"))
                .append("). Attempts:");
        for (int i = 0; i < attempts.size(); i++) {
            message.append("\n  ").append(i + 1).append(". ").append(attempts.get(i));
        }
        message.append(
                        "\nBuild it with ./mvnw -pl runtime-image -am package (needs cmake and a C++17 compiler), or point -D")
                .append(PATH_PROPERTY)
                .append(" at a directory holding ")
                .append(mapName(JNI_LIBRARY))
                .append('.');
        throw new UnsatisfiedLinkError(message.toString());
    }

    private static boolean tryExplicit(Path path, List<String> attempts) {
        Path dir = Files.isDirectory(path) ? path : path.getParent();
        Path jni = Files.isDirectory(path) ? path.resolve(mapName(JNI_LIBRARY)) : path;
        String where = "-D" + PATH_PROPERTY + "=" + path;
        if (!Files.isRegularFile(jni)) {
            attempts.add(where + ": " + jni + " does not exist or is not a file");
            return false;
        }
        Path core = dir == null ? null : dir.resolve(mapName(CORE_LIBRARY));
        try {
            if (core != null && Files.isRegularFile(core)) {
                loadFile(core, where);
            }
            loadFile(jni, where);
            return true;
        } catch (UnsatisfiedLinkError e) {
            attempts.add(e.getMessage());
            return false;
        }
    }

    private static boolean tryResource(String resourceDir, Path tmpDir, List<String> attempts) {
        ClassLoader loader = NativeLibrary.class.getClassLoader();
        String jniResource = resourceDir + "/" + mapName(JNI_LIBRARY);
        String where = "class path resource " + jniResource;
        if (loader.getResource(jniResource) == null) {
            attempts.add(where + ": not found (this jar has no native library for " + platform()
                    + "; was it built without cmake?)");
            return false;
        }
        Path dir;
        try {
            dir = Files.createTempDirectory(tmpDir, "stowage-native-");
        } catch (IOException | RuntimeException e) {
            attempts.add(where + ": cannot create a temporary directory in " + tmpDir + " (set -D" + TMPDIR_PROPERTY
                    + " to a writable directory): " + e);
            return false;
        }
        List<Path> extracted = new ArrayList<>();
        try {
            for (String name : List.of(CORE_LIBRARY, JNI_LIBRARY)) {
                String resource = resourceDir + "/" + mapName(name);
                try (InputStream in = loader.getResourceAsStream(resource)) {
                    if (in == null) {
                        continue; // the core is optional: linked statically into the JNI library
                    }
                    Path target = dir.resolve(mapName(name));
                    Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
                    extracted.add(target);
                }
            }
            for (Path file : extracted) {
                loadFile(file, where + " extracted to " + file);
            }
            return true;
        } catch (IOException e) {
            attempts.add(where + ": extracting to " + dir + " failed: " + e);
            return false;
        } catch (UnsatisfiedLinkError e) {
            String text = e.getMessage();
            if (text != null && (text.contains("failed to map segment") || text.contains("Operation not permitted"))) {
                text += " (hint: " + tmpDir + " may be mounted noexec; set -D" + TMPDIR_PROPERTY
                        + " to a directory that allows executables)";
            }
            attempts.add(text);
            return false;
        } finally {
            for (Path file : extracted) {
                deleteQuietly(file);
            }
            deleteQuietly(dir);
        }
    }

    private static void loadFile(Path file, String where) {
        String archProblem = elfArchProblem(file);
        if (archProblem != null) {
            throw new UnsatisfiedLinkError(where + ": " + archProblem);
        }
        try {
            System.load(file.toAbsolutePath().toString());
        } catch (UnsatisfiedLinkError e) {
            throw new UnsatisfiedLinkError(where + ": System.load(" + file + ") failed: " + e.getMessage());
        }
    }

    /** A readable reason when file is an ELF object for another machine, else null. */
    static String elfArchProblem(Path file) {
        byte[] header = new byte[20];
        try (InputStream in = Files.newInputStream(file)) {
            if (in.readNBytes(header, 0, header.length) < header.length) {
                return file + " is only " + Files.size(file) + " bytes: not a shared library";
            }
        } catch (IOException e) {
            return "cannot read " + file + ": " + e;
        }
        if (header[0] != 0x7f || header[1] != 'E' || header[2] != 'L' || header[3] != 'F') {
            return os(System.getProperty("os.name", "")).equals("linux")
                    ? file + " is not an ELF shared library"
                    : null;
        }
        int machine = (header[18] & 0xff) | (header[19] & 0xff) << 8;
        String fileArch = switch (machine) {
            case 0x3e -> "x86_64";
            case 0xb7 -> "aarch64";
            default -> "ELF machine " + machine;
        };
        String jvmArch = arch(System.getProperty("os.arch", ""));
        if (!fileArch.equals(jvmArch)) {
            return file + " is built for " + fileArch + " but this JVM runs on " + jvmArch
                    + " (architecture mismatch: use a build for " + platform() + ")";
        }
        return null;
    }

    private static String mapName(String library) {
        return System.mapLibraryName(library);
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // a leftover temp file is harmless; the library is already mapped
        }
    }
}
