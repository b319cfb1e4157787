package io.stowage.operator.crd;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The LlmRoute CRD in crds/ and the chart is generated from the Java model; this fails when a checked-in copy is
 * stale. Regenerate with {@code -Dcrd.update=true}.
 */
class LlmRouteCrdTest {
    static final String FILE = LlmRoute.CRD_NAME + "-v1.yml";

    static Path generate(Path dir) throws IOException {
        return CrdIsUpToDateTest.generate(LlmRoute.class, FILE, "LlmRouteCrdTest", dir, crd -> {});
    }

    @Test
    void checkedInCrdsMatchTheJavaModel(@TempDir Path tmp) throws IOException {
        String generated = Files.readString(generate(tmp));
        Path root = CrdIsUpToDateTest.repoRoot();
        for (Path checkedIn : List.of(
                root.resolve("crds").resolve(FILE),
                root.resolve("helm/stowage/crds").resolve(FILE))) {
            if (Boolean.getBoolean("crd.update")) {
                Files.createDirectories(checkedIn.getParent());
                Files.writeString(checkedIn, generated);
            }
            assertThat(checkedIn)
                    .as("%s exists (generate it with -Dcrd.update=true)", checkedIn)
                    .exists();
            assertThat(Files.readString(checkedIn))
                    .as("%s is stale: rerun the operator tests with -Dcrd.update=true and commit it", checkedIn)
                    .isEqualTo(generated);
        }
    }

    @Test
    void crdHasStatusPrinterColumnsAndValidation(@TempDir Path tmp) throws IOException {
        CustomResourceDefinition crd =
                Serialization.unmarshal(Files.readString(generate(tmp)), CustomResourceDefinition.class);
        var v = crd.getSpec().getVersions().get(0);

        assertThat(crd.getSpec().getScope()).isEqualTo("Namespaced");
        assertThat(crd.getSpec().getGroup()).isEqualTo(LlmDeployment.GROUP);
        assertThat(v.getName()).isEqualTo(LlmDeployment.VERSION);
        assertThat(v.getSubresources().getStatus()).isNotNull();
        assertThat(v.getAdditionalPrinterColumns())
                .extracting(c -> c.getName())
                .containsExactly("Route", "Tiers", "Status", "Age");
        var spec = v.getSchema().getOpenAPIV3Schema().getProperties().get("spec");
        assertThat(spec.getRequired()).contains("tiers");
        var tiers = spec.getProperties().get("tiers");
        assertThat(tiers.getMinItems()).isEqualTo(1L);
        assertThat(tiers.getMaxItems()).isEqualTo(16L);
        var tier = tiers.getItems().getSchema();
        assertThat(tier.getRequired()).contains("deployment");
        var cascade = tier.getProperties().get("cascade");
        assertThat(cascade.getProperties().get("confidence").getEnum())
                .extracting(Object::toString)
                .containsExactly("\"mean\"", "\"min\"", "\"mix\"");
        assertThat(cascade.getProperties().get("threshold").getMaximum()).isEqualTo(1.0);
        assertThat(cascade.getXKubernetesValidations())
                .extracting(r -> r.getRule())
                .containsExactly("self.threshold > 0.0");
        var match = tier.getProperties().get("match");
        assertThat(match.getXKubernetesValidations()).hasSize(1);
        assertThat(match.getProperties().get("lastUserMessage").getMaxLength()).isEqualTo(1024L);
    }

    @Test
    void theRouteNameDefaultsToTheResourceName() {
        LlmRoute r = new LlmRoute(
                "team-a",
                "chat",
                new LlmRouteSpec(
                        null,
                        List.of(new RouteTierSpec(
                                "small", null, new RouteCascadeSpec(RouteCascadeSpec.Confidence.mix, 0.6)))));
        assertThat(r.routeName()).isEqualTo("chat");
        r.getSpec().setRouteName("assistant");
        assertThat(r.routeName()).isEqualTo("assistant");
    }
}
