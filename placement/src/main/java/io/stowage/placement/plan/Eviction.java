package io.stowage.placement.plan;

/**
 * A running replica the plan takes off its device, and why.
 *
 * <p>With {@code forReplica} set, a strictly lower-priority replica preempted so that {@code forReplica}
 * fits on {@code deviceId}. With {@code forReplica == null}, the device itself is the reason: it is
 * gone, no longer fits its replicas (foreign use grew), no longer matches the deployment (kind,
 * nodeSelector, an untolerated NoExecute taint, spread), or a rebalance moved the replica to free the
 * device. Either way the placements show where the replica runs now, or a refusal says why it cannot.
 */
public record Eviction(ReplicaId victim, String deviceId, ReplicaId forReplica, String reason) {}
