package io.stowage.operator.helm;

import static org.assertj.core.api.Assertions.assertThat;

import com.marcnuri.helm.Helm;
import com.marcnuri.helm.LintResult;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.KubernetesList;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import io.fabric8.kubernetes.api.model.rbac.PolicyRule;
import io.fabric8.kubernetes.api.model.rbac.Role;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Lints and renders helm/stowage with the real helm library (helm-java) and checks the rendered objects. */
class HelmChartTest {
    static final Path ROOT =
            Path.of(System.getProperty("repo.root", "..")).toAbsolutePath().normalize();
    static final Path CHART = ROOT.resolve("helm/stowage");

    static List<HasMetadata> render(Map<String, Object> sets) {
        var cmd = new Helm(CHART).template().withName("stowage").withNamespace("stowage-system");
        sets.forEach(cmd::set);
        String yaml = cmd.call();
        List<HasMetadata> out = new ArrayList<>();
        for (String doc : yaml.split("(?m)^---\\s*$")) {
            if (doc.lines().anyMatch(l -> l.startsWith("kind:"))) {
                Object o = Serialization.unmarshal(doc);
                if (o instanceof KubernetesList l) {
                    out.addAll(l.getItems());
                } else {
                    out.add((HasMetadata) o);
                }
            }
        }
        return out;
    }

    /** Renders with a values file (for values --set cannot give, such as an empty list). */
    static List<HasMetadata> renderWithValues(String valuesYaml) throws IOException {
        Path values = Files.createTempFile("stowage-values", ".yaml");
        try {
            Files.writeString(values, valuesYaml);
            String yaml = new Helm(CHART)
                    .template()
                    .withName("stowage")
                    .withNamespace("stowage-system")
                    .withValuesFile(values)
                    .call();
            List<HasMetadata> out = new ArrayList<>();
            for (String doc : yaml.split("(?m)^---\\s*$")) {
                if (doc.lines().anyMatch(l -> l.startsWith("kind:"))) {
                    out.add((HasMetadata) Serialization.unmarshal(doc));
                }
            }
            return out;
        } finally {
            Files.deleteIfExists(values);
        }
    }

    static <T> Stream<T> ofKind(List<HasMetadata> objs, Class<T> kind) {
        return objs.stream().filter(kind::isInstance).map(kind::cast);
    }

    @Test
    void theLeaseRoleGrantsWhatFabric8sLeaderElectionDoes() {
        // Found on a real API server: LeaseLock renews the lease by PATCH; without it the leader loses the lease
        // after its first term and the operator restarts.
        List<Role> lease = ofKind(render(Map.of()), Role.class)
                .filter(r ->
                        r.getRules().stream().anyMatch(x -> x.getResources().contains("leases")))
                .toList();
        assertThat(lease).singleElement().satisfies(r -> {
            assertThat(r.getMetadata().getNamespace()).isEqualTo("stowage-system");
            assertThat(r.getRules())
                    .singleElement()
                    .satisfies(x ->
                            assertThat(x.getVerbs()).containsExactlyInAnyOrder("get", "create", "update", "patch"));
        });
    }

    @Test
    void theWorkloadRoleLetsTheOperatorResizeHostPodsInPlace() {
        // Found on a real API server: without it the resize of a growing CPU host is refused (403) and the host is
        // replaced, taking its other models' endpoints with it.
        List<PolicyRule> rules = ofKind(render(Map.of()), Role.class)
                .filter(r -> "default".equals(r.getMetadata().getNamespace()))
                .flatMap(r -> r.getRules().stream())
                .toList();
        assertThat(rules).anySatisfy(r -> {
            assertThat(r.getResources()).containsExactly("pods/resize");
            assertThat(r.getVerbs()).containsExactly("patch");
        });
    }

    @Test
    void hostDisruptionSettingsReachTheOperatorAndItsRoleMayKeepOneBudgetPerNamespace() {
        List<HasMetadata> objs = render(Map.of(
                "hostPods.notReadyGrace", "90s",
                "hostPods.terminationGracePeriodSeconds", "45",
                "hostPods.priorityClassName", "llm-serving",
                "priorityClassName", "system-cluster-critical"));

        var pod = ofKind(objs, Deployment.class)
                .findFirst()
                .orElseThrow()
                .getSpec()
                .getTemplate()
                .getSpec();
        assertThat(pod.getPriorityClassName()).isEqualTo("system-cluster-critical");
        Map<String, String> env = new java.util.TreeMap<>();
        pod.getContainers().get(0).getEnv().forEach(e -> env.put(e.getName(), e.getValue()));
        assertThat(env)
                .containsEntry("STOWAGE_NODE_NOT_READY_GRACE", "90s")
                .containsEntry("STOWAGE_NODE_CORDON_GRACE", "0s")
                .containsEntry("STOWAGE_HOST_TERMINATION_GRACE", "45s")
                .containsEntry("STOWAGE_HOST_PRE_STOP_SLEEP", "5s")
                .containsEntry("STOWAGE_HOST_PRIORITY_CLASS_NAME", "llm-serving")
                .containsEntry("STOWAGE_HOST_DISRUPTION_BUDGET_ENABLED", "true")
                .containsEntry("STOWAGE_HOST_DISRUPTION_BUDGET_MAX_UNAVAILABLE", "0");
        List<PolicyRule> rules = ofKind(objs, Role.class)
                .filter(r -> "default".equals(r.getMetadata().getNamespace()))
                .flatMap(r -> r.getRules().stream())
                .toList();
        assertThat(rules)
                .anySatisfy(r -> {
                    assertThat(r.getResources()).containsExactly("poddisruptionbudgets");
                    assertThat(r.getResourceNames()).containsExactly("stowage-hosts");
                    assertThat(r.getVerbs()).containsExactlyInAnyOrder("get", "update", "delete");
                })
                .anySatisfy(r -> {
                    assertThat(r.getResources()).containsExactly("poddisruptionbudgets");
                    assertThat(r.getVerbs()).containsExactly("create");
                });

        var off = ofKind(render(Map.of("hostPods.disruptionBudget.enabled", "false")), Role.class)
                .flatMap(r -> r.getRules().stream());
        assertThat(off).noneMatch(r -> r.getResources().contains("poddisruptionbudgets"));
        assertThat(ofKind(render(Map.of()), Deployment.class)
                        .findFirst()
                        .orElseThrow()
                        .getSpec()
                        .getTemplate()
                        .getSpec()
                        .getPriorityClassName())
                .isNull();
    }

    @Test
    void chartLintsStrictly() {
        LintResult r = new Helm(CHART).lint().strict().call();
        assertThat(r.isFailed()).as("lint messages: %s", r.getMessages()).isFalse();
    }

    @Test
    void operatorRunsNonRootReadOnlyWithTheConfiguredRuntimeImageAndAllowlist() {
        List<HasMetadata> objs =
                render(Map.of("runtimeImage.tag", "1.2.3", "modelHeader.allowedHosts[0]", "models.internal"));

        Deployment d = ofKind(objs, Deployment.class).findFirst().orElseThrow();
        var pod = d.getSpec().getTemplate().getSpec();
        assertThat(pod.getSecurityContext().getRunAsNonRoot()).isTrue();
        var c = pod.getContainers().get(0);
        assertThat(c.getSecurityContext().getReadOnlyRootFilesystem()).isTrue();
        assertThat(c.getSecurityContext().getAllowPrivilegeEscalation()).isFalse();
        assertThat(c.getImage()).isEqualTo("ghcr.io/stowage/operator:0.1.0");
        assertThat(c.getEnv())
                .anySatisfy(e -> {
                    assertThat(e.getName()).isEqualTo("STOWAGE_RUNTIME_IMAGE");
                    assertThat(e.getValue()).isEqualTo("ghcr.io/stowage/runtime:1.2.3");
                })
                .anySatisfy(e -> {
                    // GPU hosts: the cuda variant, at the chart's appVersion unless its own tag is set
                    assertThat(e.getName()).isEqualTo("STOWAGE_RUNTIME_CUDA_IMAGE");
                    assertThat(e.getValue()).isEqualTo("ghcr.io/stowage/runtime-cuda:0.1.0");
                })
                .anySatisfy(e -> {
                    assertThat(e.getName()).isEqualTo("STOWAGE_ALLOWED_MODEL_HOSTS");
                    assertThat(e.getValue()).startsWith("models.internal");
                })
                .noneSatisfy(e -> assertThat(e.getName()).isEqualTo("STOWAGE_DCGM_SERVICE"));
        assertThat(d.getSpec().getTemplate().getSpec().getServiceAccountName()).isEqualTo("stowage-operator");
    }

    @Test
    void theGpuHostsCudaImageIsItsOwnValue() {
        Deployment d = ofKind(
                        render(Map.of(
                                "runtimeCudaImage.repository", "registry.example/gpu-runtime",
                                "runtimeCudaImage.tag", "9")),
                        Deployment.class)
                .findFirst()
                .orElseThrow();
        assertThat(d.getSpec().getTemplate().getSpec().getContainers().get(0).getEnv())
                .anySatisfy(e -> {
                    assertThat(e.getName()).isEqualTo("STOWAGE_RUNTIME_CUDA_IMAGE");
                    assertThat(e.getValue()).isEqualTo("registry.example/gpu-runtime:9");
                })
                .anySatisfy(e -> {
                    assertThat(e.getName()).isEqualTo("STOWAGE_RUNTIME_IMAGE");
                    assertThat(e.getValue()).isEqualTo("ghcr.io/stowage/runtime:0.1.0");
                });
    }

    @Test
    void theOperatorPodIsAdmittedUnderPodSecurityRestricted() {
        Deployment d = ofKind(render(Map.of()), Deployment.class).findFirst().orElseThrow();
        assertThat(io.stowage.operator.security.PodSecurityStandards.restrictedViolations(
                        d.getSpec().getTemplate().getSpec()))
                .isEmpty();
    }

    @Test
    void dcgmIsOffByDefaultSoNoRoleNeedsTheGpuOperatorNamespaceAndOnPutsItsRoleThere() {
        List<HasMetadata> byDefault = render(Map.of());
        assertThat(byDefault)
                .as("nothing in gpu-operator unless dcgmExporter.enabled")
                .noneMatch(o -> "gpu-operator".equals(o.getMetadata().getNamespace()));

        List<HasMetadata> on = render(Map.of("dcgmExporter.enabled", "true"));
        assertThat(ofKind(on, Role.class))
                .anySatisfy(r -> assertThat(r.getMetadata().getNamespace()).isEqualTo("gpu-operator"));
        Deployment d = ofKind(on, Deployment.class).findFirst().orElseThrow();
        assertThat(d.getSpec().getTemplate().getSpec().getContainers().get(0).getEnv())
                .anySatisfy(e -> {
                    assertThat(e.getName()).isEqualTo("STOWAGE_DCGM_SERVICE");
                    assertThat(e.getValue()).isEqualTo("gpu-operator/nvidia-dcgm-exporter");
                });
    }

    @Test
    void emptyManagedNamespacesMeansEveryNamespaceWithTheNamespacedWritesGrantedClusterWide() throws IOException {
        List<HasMetadata> all = renderWithValues("managedNamespaces: []\n");
        List<HasMetadata> one = render(Map.of("managedNamespaces[0]", "team-a"));

        Deployment d = ofKind(all, Deployment.class).findFirst().orElseThrow();
        // No namespace list reaches the operator: the code's empty list, every namespace.
        assertThat(d.getSpec().getTemplate().getSpec().getContainers().get(0).getEnv())
                .noneSatisfy(
                        e -> assertThat(e.getName()).isIn("STOWAGE_NAMESPACES", "QUARKUS_OPERATOR_SDK_NAMESPACES"));
        assertThat(ofKind(all, Role.class))
                .as("no per-namespace workload Role")
                .allSatisfy(r -> assertThat(r.getMetadata().getNamespace()).isEqualTo("stowage-system"));
        ClusterRole workloads = ofKind(all, ClusterRole.class)
                .filter(r -> r.getMetadata().getName().equals("stowage-operator-workloads"))
                .findFirst()
                .orElseThrow();
        Role perNamespace = ofKind(one, Role.class)
                .filter(r -> "team-a".equals(r.getMetadata().getNamespace()))
                .findFirst()
                .orElseThrow();
        assertThat(workloads.getRules())
                .as("the same rules as a managed namespace's Role")
                .isEqualTo(perNamespace.getRules());
        assertThat(workloads.getRules())
                .anySatisfy(r -> {
                    assertThat(r.getResources()).containsExactly("pods");
                    assertThat(r.getVerbs()).contains("create", "delete");
                })
                .anySatisfy(r -> assertThat(r.getResources()).containsExactly("events"));
        assertThat(ofKind(all, ClusterRoleBinding.class)).anySatisfy(b -> {
            assertThat(b.getRoleRef().getName()).isEqualTo("stowage-operator-workloads");
            assertThat(b.getSubjects().get(0).getNamespace()).isEqualTo("stowage-system");
        });
        assertThat(ofKind(one, ClusterRole.class))
                .as("a namespace list grants no cluster-wide writes")
                .noneMatch(r -> r.getMetadata().getName().endsWith("-workloads"));
        assertThat(io.stowage.operator.reconcile.OperatorConfig.defaults().namespaces())
                .isEmpty();
        assertThat(io.stowage.operator.reconcile.OperatorConfig.defaults().manages("any-namespace"))
                .as("the code reads an empty list as every namespace too")
                .isTrue();
    }

    @Test
    void theModelCacheIsAnEmptyDirUnlessAClaimOrANodeDirectoryIsGiven() {
        var env = ofKind(render(Map.of()), Deployment.class)
                .findFirst()
                .orElseThrow()
                .getSpec()
                .getTemplate()
                .getSpec()
                .getContainers()
                .get(0)
                .getEnv();
        assertThat(env)
                .noneSatisfy(e -> assertThat(e.getName())
                        .isIn(
                                "STOWAGE_MODEL_CACHE_HOST_PATH",
                                "STOWAGE_MODEL_CACHE_PVC",
                                "STOWAGE_MODEL_CACHE_SIZE_LIMIT"));
        var set = ofKind(render(Map.of("modelCache.pvc", "models", "modelCache.sizeLimit", "50Gi")), Deployment.class)
                .findFirst()
                .orElseThrow()
                .getSpec()
                .getTemplate()
                .getSpec()
                .getContainers()
                .get(0)
                .getEnv();
        assertThat(set)
                .anySatisfy(e -> {
                    assertThat(e.getName()).isEqualTo("STOWAGE_MODEL_CACHE_PVC");
                    assertThat(e.getValue()).isEqualTo("models");
                })
                .anySatisfy(e -> {
                    assertThat(e.getName()).isEqualTo("STOWAGE_MODEL_CACHE_SIZE_LIMIT");
                    assertThat(e.getValue()).isEqualTo("50Gi");
                });
    }

    @Test
    void rbacIsLeastPrivilegeSecretsOnlyInManagedNamespaces() {
        List<HasMetadata> objs = render(Map.of("managedNamespaces[0]", "team-a", "managedNamespaces[1]", "team-b"));

        List<PolicyRule> clusterRules = ofKind(objs, ClusterRole.class)
                .flatMap(r -> r.getRules().stream())
                .toList();
        assertThat(clusterRules).noneSatisfy(r -> assertThat(r.getResources()).contains("secrets"));
        assertThat(clusterRules).allSatisfy(r -> {
            assertThat(r.getVerbs()).doesNotContain("*");
            assertThat(r.getResources()).doesNotContain("*");
        });
        assertThat(clusterRules)
                .filteredOn(r -> r.getResources().contains("pods"))
                .allSatisfy(r -> assertThat(r.getVerbs()).containsOnly("get", "list", "watch"));
        assertThat(ofKind(objs, ClusterRoleBinding.class))
                .allSatisfy(b -> assertThat(b.getRoleRef().getName()).isNotEqualTo("cluster-admin"));
        List<Role> secretRoles = ofKind(objs, Role.class)
                .filter(r ->
                        r.getRules().stream().anyMatch(x -> x.getResources().contains("secrets")))
                .toList();
        // The managed namespaces, and the operator's own for the admin CA.
        assertThat(secretRoles)
                .extracting(r -> r.getMetadata().getNamespace())
                .containsExactlyInAnyOrder("team-a", "team-b", "stowage-system");
        for (Role role : secretRoles) {
            boolean own = role.getMetadata().getNamespace().equals("stowage-system");
            List<String> readable = own
                    ? List.of(io.stowage.operator.reconcile.Labels.CA_SECRET)
                    : List.of(
                            io.stowage.operator.reconcile.Labels.TOKEN_SECRET,
                            io.stowage.operator.reconcile.Labels.HOST_TLS_SECRET);
            List<String> updatable = own
                    ? List.of(io.stowage.operator.reconcile.Labels.CA_SECRET)
                    : List.of(io.stowage.operator.reconcile.Labels.HOST_TLS_SECRET);
            assertThat(role.getRules())
                    .filteredOn(r -> r.getResources().contains("secrets"))
                    .allSatisfy(r -> {
                        assertThat(r.getResources()).containsExactly("secrets");
                        if (r.getVerbs().contains("create")) {
                            // create cannot be restricted by name: it stands alone.
                            assertThat(r.getVerbs()).containsExactly("create");
                        } else {
                            assertThat(r.getVerbs()).isSubsetOf("get", "update", "delete");
                            assertThat(r.getResourceNames()).isNotEmpty().isSubsetOf(readable);
                            if (r.getVerbs().contains("update")) {
                                assertThat(r.getResourceNames()).isSubsetOf(updatable);
                            }
                            if (r.getVerbs().contains("delete")) {
                                // the namespace's own Secrets, when its last LlmDeployment goes; never the CA
                                assertThat(own).isFalse();
                            }
                        }
                    })
                    .anySatisfy(r -> assertThat(r.getVerbs()).contains("get"))
                    .anySatisfy(r -> assertThat(r.getVerbs()).contains("update"))
                    .anySatisfy(r -> assertThat(r.getVerbs()).containsExactly("create"))
                    .noneSatisfy(r -> assertThat(r.getVerbs()).containsAnyOf("list", "watch", "patch"));
        }
    }

    @Test
    void adminTlsIsOnByDefaultAndOffDropsTheCaRoleAndTheUpdateRule() {
        Deployment d = ofKind(render(Map.of()), Deployment.class).findFirst().orElseThrow();
        assertThat(d.getSpec().getTemplate().getSpec().getContainers().get(0).getEnv())
                .anySatisfy(e -> {
                    assertThat(e.getName()).isEqualTo("STOWAGE_OPERATOR_NAMESPACE");
                    assertThat(e.getValue()).isEqualTo("stowage-system");
                })
                .anySatisfy(e -> {
                    assertThat(e.getName()).isEqualTo("STOWAGE_ADMIN_TLS_ENABLED");
                    assertThat(e.getValue()).isEqualTo("true");
                });

        List<HasMetadata> off = render(Map.of("adminTls.enabled", "false"));
        assertThat(ofKind(off, Role.class))
                .noneMatch(r -> r.getMetadata().getName().endsWith("-admin-ca"))
                .flatExtracting(Role::getRules)
                .filteredOn(r -> r.getResources().contains("secrets"))
                .noneSatisfy(r -> assertThat(r.getVerbs()).contains("update"))
                .allSatisfy(r -> {
                    if (r.getResourceNames() != null && !r.getResourceNames().isEmpty()) {
                        assertThat(r.getResourceNames())
                                .containsExactly(io.stowage.operator.reconcile.Labels.TOKEN_SECRET);
                    }
                });
    }

    @Test
    void serviceMonitorIsOptional() {
        assertThat(render(Map.of())).noneMatch(o -> "ServiceMonitor".equals(o.getKind()));
        assertThat(render(Map.of("metrics.serviceMonitor.enabled", "true")))
                .anyMatch(o -> "ServiceMonitor".equals(o.getKind()));
    }

    @Test
    void chartShipsTheGeneratedCrd() throws IOException {
        String name = "llmdeployments.stowage.io-v1.yml";
        assertThat(Files.readString(CHART.resolve("crds").resolve(name)))
                .as("helm/stowage/crds/%s must be a copy of crds/%s", name, name)
                .isEqualTo(Files.readString(ROOT.resolve("crds").resolve(name)));
    }
}
