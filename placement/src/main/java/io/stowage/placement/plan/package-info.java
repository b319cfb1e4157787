/**
 * The placement planner: {@link io.stowage.placement.plan.StowagePlanner} and the baselines it is
 * measured against ({@link io.stowage.placement.plan.NoSharingPacker},
 * {@link io.stowage.placement.plan.WholeDevicePacker}, {@link io.stowage.placement.plan.LowerBound}).
 *
 * <p>Decisions a caller should know:
 *
 * <ul>
 *   <li>Order: pending replicas go by priority (desc), then by model (W desc, digest) so that a model's
 *       replicas are placed together, then K (desc), deployment id, replica index.
 *   <li>A new weight copy goes to an open device with room for the model's pending group, else to the
 *       empty device with the largest usable capacity (the fewest devices are used when each one opened
 *       has the most room), else to any open device it fits. The whole-device baseline opens the
 *       smallest device that fits instead.
 *   <li>{@link io.stowage.placement.plan.StowagePlanner} keeps the checked, sorted device inventory of
 *       its last request and reuses it while a request carries the very same device list (a pure cache:
 *       results do not change).
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
