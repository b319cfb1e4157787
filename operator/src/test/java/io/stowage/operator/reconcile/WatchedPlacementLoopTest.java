package io.stowage.operator.reconcile;

import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;

/**
 * Every placement loop scenario again with the operator reading the cluster through informer caches
 * ({@link WatchedCluster}) instead of LISTs: the same placements, statuses, labels and events.
 */
@EnableKubernetesMockClient(crud = true)
class WatchedPlacementLoopTest extends PlacementLoopTest {
    @Override
    TestCluster cluster(OperatorConfig config) throws Exception {
        return new TestCluster(client, config).watched();
    }
}
