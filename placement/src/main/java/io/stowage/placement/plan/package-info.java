/**
 * The placement planner: {@link io.stowage.placement.plan.StowagePlanner} and the baselines it is
 * measured against ({@link io.stowage.placement.plan.NoSharingPacker},
 * {@link io.stowage.placement.plan.WholeDevicePacker}, {@link io.stowage.placement.plan.LowerBound}).
 *
 * <p>Decisions a caller should know:
 *
 * <ul>
 *   <li>Order: pending replicas go by priority (desc), W + K (desc), deployment id, replica index.
 *   <li>Eligibility: device kind, nodeSelector against the device labels, every NoSchedule and NoExecute
 *       taint tolerated (PreferNoSchedule is ignored), maxReplicasPerNode per node, compute shares held
 *       in millionths so sums do not drift.
 *   <li>A running replica stays unless its device is gone, no longer fits (the lowest-priority replicas
 *       leave first), or no longer matches its deployment; like Kubernetes, a NoSchedule taint added
 *       later does not move it, NoExecute does. Scale down removes the highest indices.
 *   <li>Preemption evicts only strictly lower priorities, on one device, fewest victims first; victims
 *       are re-placed elsewhere when possible.
 *   <li>After placing, devices are drained into open devices where that empties them: replicas placed
 *       in this pass move freely (nothing runs yet); running replicas move only when a rebalance is
 *       asked for, at most maxDisruption of them, and only when the device ends empty.
 *   <li>The baselines plan from scratch: current placements, rebalance and preemption do not apply.
 * </ul>
 */
package io.stowage.placement.plan;
