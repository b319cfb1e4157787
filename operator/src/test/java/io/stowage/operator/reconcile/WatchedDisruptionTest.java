package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;

/** Every disruption scenario again with the operator reading the cluster through informer caches. */
@EnableKubernetesMockClient(crud = true)
class WatchedDisruptionTest extends DisruptionTest {
    @Override
    TestCluster cluster(OperatorConfig config) throws Exception {
        return new TestCluster(client, config).watched();
    }
}
