package io.stowage.operator.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.NodeList;

/** The operator image's Dockerfile against the root pom: every reactor module's pom reaches the build. */
class DockerfileTest {
    static final Path ROOT =
            Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();

    static List<String> modules() throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        Document doc = f.newDocumentBuilder().parse(ROOT.resolve("pom.xml").toFile());
        NodeList nodes = doc.getElementsByTagName("module");
        List<String> out = new ArrayList<>();
        for (int i = 0; i < nodes.getLength(); i++) {
            out.add(nodes.item(i).getTextContent().trim());
        }
        return out;
    }

    /** The sources of the Dockerfile's COPY instructions (build stage only: no --from). */
    static List<String> copiedSources() throws Exception {
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(ROOT.resolve("Dockerfile"))) {
            String t = line.trim();
            if (!t.startsWith("COPY ") || t.contains("--from")) {
                continue;
            }
            String[] parts = t.substring(5).trim().split("\\s+");
            for (int i = 0; i < parts.length - 1; i++) {
                out.add(parts[i].replaceAll("/+$", ""));
            }
        }
        return out;
    }

    @Test
    void everyModuleOfTheRootPomHasItsPomCopiedBeforeMavenRuns() throws Exception {
        List<String> modules = modules();
        assertThat(modules).isNotEmpty().contains("operator");
        List<String> copied = copiedSources();
        for (String m : modules) {
            assertThat(copied)
                    .as("the Dockerfile must COPY %s/pom.xml (or %s): the root pom lists module %s", m, m, m)
                    .containsAnyOf(m + "/pom.xml", m);
        }
    }

    @Test
    void noBuildStepHidesAFailure() throws Exception {
        for (String line : Files.readAllLines(ROOT.resolve("Dockerfile"))) {
            assertThat(line).as("Dockerfile line %s", line).doesNotContain("|| true");
        }
    }
}
