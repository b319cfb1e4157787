package io.stowage.operator.image;

import static org.assertj.core.api.Assertions.assertThat;

import com.marcnuri.helm.Helm;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.stowage.operator.crd.LlmDeployment;
import io.stowage.placement.gguf.GgufReader;
import io.stowage.placement.gguf.ModelDescription;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

/**
 * docs/install.md against what it describes: image names and tags (chart values, Dockerfile comments), the
 * Dockerfiles' build arguments, the chart values its helm commands set, the example manifests and the model
 * store it fills.
 */
class InstallGuideTest {
    static final Path ROOT =
            Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();
    static final Path GUIDE = ROOT.resolve("docs/install.md");
    static final Path CHART = ROOT.resolve("helm/stowage");

    /**
     * A Stowage image reference: a repository ending in stowage/operator, stowage/runtime or stowage/runtime-cuda, and
     * its tag if any.
     */
    static final Pattern IMAGE_REF = Pattern.compile(
            "((?:[a-z0-9.-]+(?:/[a-z0-9._-]+)*/)?stowage/(operator|runtime-cuda|runtime))(?::([A-Za-z0-9._$-]+))?");

    static final Pattern HELM_SET = Pattern.compile("--set\\s+([A-Za-z0-9_.\\[\\]]+)=(\\S+)");
    static final Pattern BUILD_ARG = Pattern.compile("--build-arg\\s+([A-Za-z_][A-Za-z0-9_]*)=(\\S+)");
    static final Pattern REPO_PATH =
            Pattern.compile("(?<![\\w/.-])((?:examples|helm|runtime-image|crds|docs)/[\\w./-]*\\w)");

    static String read(Path p) throws IOException {
        return Files.readString(p);
    }

    static Object yaml(Path p) throws IOException {
        return new Yaml(new SafeConstructor(new LoaderOptions())).load(read(p));
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> values() throws IOException {
        return (Map<String, Object>) yaml(CHART.resolve("values.yaml"));
    }

    @SuppressWarnings("unchecked")
    static String appVersion() throws IOException {
        return String.valueOf(((Map<String, Object>) yaml(CHART.resolve("Chart.yaml"))).get("appVersion"));
    }

    /** The value at a dotted {@code --set} key ({@code a.b[0].c}), or empty when values.yaml has no such key. */
    @SuppressWarnings("unchecked")
    static Optional<Object> valueAt(Map<String, Object> values, String key) {
        Object at = values;
        for (String part : key.split("\\.")) {
            String name = part.replaceAll("\\[\\d+]$", "");
            if (!(at instanceof Map<?, ?> m) || !m.containsKey(name)) {
                return Optional.empty();
            }
            at = ((Map<String, Object>) m).get(name);
            if (!name.equals(part) && !(at instanceof List<?>)) {
                return Optional.empty();
            }
        }
        return Optional.ofNullable(at);
    }

    /** The image the chart runs for {@code component} ("image" or "runtimeImage") when nothing is set. */
    @SuppressWarnings("unchecked")
    static String defaultImage(String component) throws IOException {
        Map<String, Object> v = (Map<String, Object>) values().get(component);
        String tag = v.get("tag") == null ? "" : v.get("tag").toString();
        return v.get("repository") + ":" + (tag.isEmpty() ? appVersion() : tag);
    }

    /** The shell commands of the guide's fenced blocks, continuation lines joined. */
    static List<String> commands(String markdown) {
        List<String> out = new ArrayList<>();
        boolean inBlock = false;
        StringBuilder cmd = new StringBuilder();
        for (String line : markdown.split("\n", -1)) {
            if (line.startsWith("```")) {
                inBlock = !inBlock;
                continue;
            }
            if (!inBlock) {
                continue;
            }
            String t = line.strip();
            if (t.endsWith("\\")) {
                cmd.append(t, 0, t.length() - 1).append(' ');
                continue;
            }
            cmd.append(t);
            if (!cmd.isEmpty()) {
                out.add(cmd.toString().strip());
            }
            cmd.setLength(0);
        }
        return out;
    }

    /** {@code ARG NAME=DEFAULT} lines of a Dockerfile, in order. */
    static Map<String, String> args(Path dockerfile) throws IOException {
        Map<String, String> out = new LinkedHashMap<>();
        for (String line : Files.readAllLines(dockerfile)) {
            Matcher m = Pattern.compile("^ARG\\s+([A-Za-z_][A-Za-z0-9_]*)=(\\S+)\\s*$")
                    .matcher(line.strip());
            if (m.matches()) {
                out.put(m.group(1), m.group(2));
            }
        }
        return out;
    }

    static List<String> fromLines(Path dockerfile) throws IOException {
        return Files.readAllLines(dockerfile).stream()
                .map(String::strip)
                .filter(l -> l.startsWith("FROM "))
                .toList();
    }

    static String sha256(Path file) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** The model files the repository ships where examples and tests take them from. */
    static List<Path> localModels() throws IOException {
        List<Path> out = new ArrayList<>();
        for (String dir :
                List.of("examples", "runtime-image/src/test/resources/models", "operator/src/test/resources/models")) {
            if (!Files.isDirectory(ROOT.resolve(dir))) {
                continue;
            }
            try (Stream<Path> s = Files.walk(ROOT.resolve(dir))) {
                s.filter(p -> p.toString().endsWith(".gguf")).sorted().forEach(out::add);
            }
        }
        return out;
    }

    static List<String> documents(Path yamlFile) throws IOException {
        return Stream.of(read(yamlFile).split("(?m)^---\\s*$"))
                .filter(d -> d.lines().anyMatch(l -> l.startsWith("kind:")))
                .toList();
    }

    static LlmDeployment deployment(String exampleFile) throws IOException {
        List<String> docs = documents(ROOT.resolve("examples/k8s").resolve(exampleFile));
        assertThat(docs).as("examples/k8s/%s holds one object", exampleFile).hasSize(1);
        return Serialization.unmarshal(docs.get(0), LlmDeployment.class);
    }

    @Test
    void everyStowageImageNamedInTheDocsAndDockerfilesIsTheChartDefaultAtItsAppVersion() throws IOException {
        String version = appVersion();
        Map<String, String> defaults = Map.of(
                "operator", defaultImage("image"),
                "runtime", defaultImage("runtimeImage"),
                "runtime-cuda", defaultImage("runtimeCudaImage"));
        assertThat(defaults.get("operator")).endsWith(":" + version);
        assertThat(defaults.get("runtime-cuda")).endsWith(":" + version);
        assertThat(defaults.get("runtime")).endsWith(":" + version);

        List<Path> texts = List.of(
                GUIDE,
                ROOT.resolve("Dockerfile"),
                ROOT.resolve("runtime-image/Dockerfile"),
                CHART.resolve("README.md"),
                CHART.resolve("values.yaml"),
                ROOT.resolve("examples/k8s/README.md"));
        for (Path p : texts) {
            Matcher m = IMAGE_REF.matcher(read(p));
            while (m.find()) {
                String repo = m.group(1);
                String tag = m.group(3);
                String component = m.group(2);
                if (tag != null) {
                    assertThat(tag)
                            .as(
                                    "%s names %s:%s; the chart's images default to tag %s (Chart.yaml appVersion)",
                                    ROOT.relativize(p), repo, tag, version)
                            .isEqualTo(version);
                }
                if (repo.startsWith("ghcr.io/")) {
                    assertThat(repo + ":" + version)
                            .as(
                                    "%s names %s; values.yaml's default for the %s image is %s",
                                    ROOT.relativize(p), repo, component, defaults.get(component))
                            .isEqualTo(defaults.get(component));
                }
            }
        }
        String guide = read(GUIDE);
        assertThat(guide).contains("docker build -t " + defaults.get("operator") + " .");
        assertThat(guide).contains(" -t " + defaults.get("runtime") + " runtime-image");
        assertThat(guide).contains(" -t " + defaults.get("runtime-cuda") + " runtime-image");
        assertThat(read(ROOT.resolve("Dockerfile"))).contains("docker build -t " + defaults.get("operator") + " .");
        assertThat(read(ROOT.resolve("runtime-image/Dockerfile")))
                .contains("docker build -t " + defaults.get("runtime") + " runtime-image")
                .contains(" -t " + defaults.get("runtime-cuda") + " runtime-image");
    }

    @Test
    void everyRepositoryTheGuideSetsInTheChartIsOneItPushesAtTheAppVersion() throws IOException {
        String guide = read(GUIDE);
        String version = appVersion();
        Matcher m = HELM_SET.matcher(guide);
        int repositories = 0;
        while (m.find()) {
            String key = m.group(1);
            if (!key.endsWith(".repository")) {
                continue;
            }
            repositories++;
            String repo = m.group(2);
            String component = key.startsWith("runtimeCudaImage")
                    ? "runtime-cuda"
                    : key.startsWith("runtimeImage") ? "runtime" : "operator";
            assertThat(repo).as("--set %s=%s", key, repo).endsWith("/stowage/" + component);
            assertThat(commands(guide))
                    .as("the guide sets %s=%s but pushes no %s:%s", key, repo, repo, version)
                    .contains("docker push " + repo + ":" + version);
        }
        assertThat(repositories)
                .as("the guide's install sets both repositories")
                .isGreaterThanOrEqualTo(2);
    }

    @Test
    void bothDockerfilesTakeTheirBaseImagesAsBuildArgumentsThatTheGuideNames() throws IOException {
        String guide = read(GUIDE);
        Map<String, Path> byContext =
                Map.of(".", ROOT.resolve("Dockerfile"), "runtime-image", ROOT.resolve("runtime-image/Dockerfile"));
        List<String> allArgs = new ArrayList<>();
        for (Path dockerfile : byContext.values()) {
            Map<String, String> args = args(dockerfile);
            allArgs.addAll(args.keySet());
            assertThat(args)
                    .as("%s declares ARG BASE_IMAGE=...", ROOT.relativize(dockerfile))
                    .containsKey("BASE_IMAGE");
            List<String> froms = fromLines(dockerfile);
            assertThat(froms.get(froms.size() - 1))
                    .as("%s: the final stage starts FROM ${BASE_IMAGE}", ROOT.relativize(dockerfile))
                    .startsWith("FROM ${BASE_IMAGE}");
            for (String from : froms) {
                Matcher arg = Pattern.compile("^FROM \\$\\{(\\w+)}").matcher(from);
                assertThat(arg.find())
                        .as("%s: '%s' takes its image from a build argument", ROOT.relativize(dockerfile), from)
                        .isTrue();
                assertThat(args).containsKey(arg.group(1));
            }
            args.forEach((name, def) -> assertThat(guide)
                    .as("the guide names %s's default %s (%s)", ROOT.relativize(dockerfile), name, def)
                    .contains(def));
            Matcher comment = BUILD_ARG.matcher(read(dockerfile));
            while (comment.find()) {
                assertThat(args)
                        .as("%s's comment passes --build-arg %s", ROOT.relativize(dockerfile), comment.group(1))
                        .containsKey(comment.group(1));
            }
        }
        for (String cmd : commands(guide)) {
            if (!cmd.startsWith("docker build")) {
                continue;
            }
            String[] words = cmd.split("\\s+");
            Path dockerfile = byContext.get(words[words.length - 1]);
            assertThat(dockerfile)
                    .as("'%s' builds one of the two Dockerfiles", cmd)
                    .isNotNull();
            Matcher a = BUILD_ARG.matcher(cmd);
            while (a.find()) {
                assertThat(args(dockerfile))
                        .as("'%s': %s has no ARG %s", cmd, ROOT.relativize(dockerfile), a.group(1))
                        .containsKey(a.group(1));
            }
        }
        Matcher prose = BUILD_ARG.matcher(guide);
        while (prose.find()) {
            assertThat(allArgs)
                    .as("the guide passes --build-arg %s", prose.group(1))
                    .contains(prose.group(1));
        }
    }

    @Test
    void everyChartValueTheGuideSetsOrNamesExistsAndTheChartRendersWithItsInstallCommand() throws IOException {
        String guide = read(GUIDE);
        Map<String, Object> values = values();
        Matcher m = HELM_SET.matcher(guide);
        while (m.find()) {
            assertThat(valueAt(values, m.group(1)))
                    .as("the guide sets %s, which helm/stowage/values.yaml does not have", m.group(1))
                    .isPresent();
        }
        // The value table: first cells of rows such as | `reserve.fraction`, `reserve.floorMiB` | ...
        Matcher row =
                Pattern.compile("(?m)^\\| ((?:`[\\w.*\\[\\]]+`(?:, )?)+) \\|").matcher(guide);
        int named = 0;
        while (row.find()) {
            Matcher key = Pattern.compile("`([\\w.*\\[\\]]+)`").matcher(row.group(1));
            while (key.find()) {
                String k = key.group(1).replaceAll("\\.\\*$", "");
                named++;
                assertThat(valueAt(values, k))
                        .as("the guide's value table names %s, which values.yaml does not have", key.group(1))
                        .isPresent();
            }
        }
        assertThat(named).as("keys in the guide's value table").isGreaterThanOrEqualTo(5);

        List<String> installs = commands(guide).stream()
                .filter(c -> c.startsWith("helm install") || c.startsWith("helm upgrade"))
                .toList();
        assertThat(installs).isNotEmpty();
        for (String cmd : installs) {
            assertThat(cmd)
                    .as("'%s' installs the chart of this repository", cmd)
                    .contains(" helm/stowage ");
            var template = new Helm(CHART).template().withName("stowage").withNamespace("stowage-system");
            Matcher set = HELM_SET.matcher(cmd);
            while (set.find()) {
                String value = set.group(2).replaceAll("^'(.*)'$", "$1");
                if (value.startsWith("{") && value.endsWith("}")) {
                    // helm's --set list syntax; helm-java sets values as they are, so index them as helm does.
                    String[] items = value.substring(1, value.length() - 1).split(",");
                    for (int i = 0; i < items.length; i++) {
                        template.set(set.group(1) + "[" + i + "]", items[i]);
                    }
                } else {
                    template.set(set.group(1), value);
                }
            }
            String rendered = template.call();
            Matcher image = Pattern.compile("--set image\\.repository=(\\S+)").matcher(cmd);
            if (image.find()) {
                assertThat(rendered).contains("image: " + image.group(1) + ":" + appVersion());
            }
            if (cmd.contains("dcgmExporter.enabled=false")) {
                assertThat(rendered).doesNotContain("STOWAGE_DCGM_SERVICE");
            }
        }
    }

    @Test
    void everyRepositoryPathTheGuideNamesExistsAndEveryManifestParses() throws IOException {
        String guide = read(GUIDE);
        Matcher m = REPO_PATH.matcher(guide);
        int manifests = 0;
        while (m.find()) {
            Path p = ROOT.resolve(m.group(1));
            assertThat(p).as("docs/install.md names %s", m.group(1)).exists();
            if (m.group(1).startsWith("examples/k8s/") && m.group(1).endsWith(".yaml")) {
                manifests++;
                List<String> docs = documents(p);
                assertThat(docs).as("%s holds Kubernetes objects", m.group(1)).isNotEmpty();
                for (String doc : docs) {
                    Object o = doc.contains("kind: LlmDeployment")
                            ? Serialization.unmarshal(doc, LlmDeployment.class)
                            : Serialization.unmarshal(doc);
                    assertThat(o).isInstanceOf(HasMetadata.class);
                    assertThat(((HasMetadata) o).getMetadata().getName())
                            .as("an object of %s", m.group(1))
                            .isNotBlank();
                }
            }
        }
        assertThat(manifests).as("example manifests the guide names").isGreaterThanOrEqualTo(3);
    }

    @Test
    void theGuideCopiesIntoTheModelStoreTheFileThatTheExamplesReadFromIt() throws Exception {
        String guide = read(GUIDE);
        String loader = documents(ROOT.resolve("examples/k8s/model-store.yaml")).stream()
                .filter(d -> d.contains("kind: Pod"))
                .findFirst()
                .orElseThrow();
        var pod = (io.fabric8.kubernetes.api.model.Pod) Serialization.unmarshal(loader);
        String mount =
                pod.getSpec().getContainers().get(0).getVolumeMounts().get(0).getMountPath();
        String claim =
                pod.getSpec().getVolumes().get(0).getPersistentVolumeClaim().getClaimName();

        Matcher cp = Pattern.compile(
                        "kubectl cp (\\S+) [\\w-]+/" + pod.getMetadata().getName() + ":(\\S+)")
                .matcher(String.join("\n", commands(guide)));
        assertThat(cp.find())
                .as("the guide copies a model into %s", pod.getMetadata().getName())
                .isTrue();
        Path source = ROOT.resolve(cp.group(1));
        assertThat(cp.group(2)).startsWith(mount + "/");
        String uri = "pvc://" + claim + cp.group(2).substring(mount.length());

        for (String example : List.of("cpu-serving.yaml", "chat-q8.yaml")) {
            LlmDeployment d = deployment(example);
            assertThat(d.getSpec().getModel().getUri())
                    .as("examples/k8s/%s", example)
                    .isEqualTo(uri);
            assertThat(d.getSpec().getModel().getSha256())
                    .as("examples/k8s/%s pins the digest of %s", example, cp.group(1))
                    .isEqualTo(sha256(source));
        }
    }

    @Test
    void chatQ8ServesAQ8_0FileAndTheExamplesTableSaysWhatEachLocalFileIs() throws Exception {
        Map<String, Path> bySha = new LinkedHashMap<>();
        for (Path p : localModels()) {
            bySha.putIfAbsent(sha256(p), p);
        }
        String table = read(ROOT.resolve("examples/k8s/README.md"));

        LlmDeployment chat = deployment("chat-q8.yaml");
        Path local = bySha.get(chat.getSpec().getModel().getSha256());
        if (local != null) {
            assertThat(ModelDescription.from(GgufReader.readFile(local)).quantization())
                    .as("chat-q8.yaml reads %s", ROOT.relativize(local))
                    .isEqualTo("Q8_0");
        } else {
            // No local copy of its file: the name is all there is to go by, as examples/k8s/README.md does.
            assertThat(chat.getSpec().getModel().getUri().toLowerCase())
                    .as("chat-q8.yaml's model (no local file has its sha256) is named as a Q8_0 file")
                    .contains("q8_0");
        }

        try (Stream<Path> files = Files.list(ROOT.resolve("examples/k8s"))) {
            for (Path f :
                    files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList()) {
                String name = f.getFileName().toString();
                Optional<String> row = table.lines()
                        .filter(l -> l.startsWith("| `" + name + "`"))
                        .findFirst();
                assertThat(row)
                        .as("examples/k8s/README.md has a row for %s", name)
                        .isPresent();
                for (String doc : documents(f)) {
                    if (!doc.contains("kind: LlmDeployment")) {
                        continue;
                    }
                    LlmDeployment d = Serialization.unmarshal(doc, LlmDeployment.class);
                    Path file = d.getSpec().getModel().getSha256() == null
                            ? null
                            : bySha.get(d.getSpec().getModel().getSha256());
                    if (file == null) {
                        continue;
                    }
                    String quant =
                            ModelDescription.from(GgufReader.readFile(file)).quantization();
                    assertThat(row.get())
                            .as("the row of %s (%s is %s)", name, ROOT.relativize(file), quant)
                            .contains(quant);
                    for (String other : List.of("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K")) {
                        if (!other.equals(quant)) {
                            assertThat(row.get())
                                    .as("the row of %s calls a %s file %s", name, quant, other)
                                    .doesNotContain("(" + other)
                                    .doesNotContain(", " + other + ")");
                        }
                    }
                }
            }
        }
    }
}
