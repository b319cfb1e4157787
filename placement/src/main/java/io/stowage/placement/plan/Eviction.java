package io.stowage.placement.plan;

/** A running lower-priority replica the plan removes so that {@code forReplica} fits. */
public record Eviction(ReplicaId victim, String deviceId, ReplicaId forReplica, String reason) {}
