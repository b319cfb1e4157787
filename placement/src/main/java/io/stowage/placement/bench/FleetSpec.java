package io.stowage.placement.bench;

import java.util.List;

/**
 * The recipe of one generated bench instance.
 *
 * @param gpuMix GPU types, one picked per node uniformly from this list (repeat a type to weight it)
 * @param models the models deployments draw from (Zipf over model × quantization)
 * @param targetReplicas deployments are generated until their replicas sum to this
 * @param maxReplicas the most replicas of one deployment
 * @param contexts maxTokens values drawn uniformly (capped at the model's context)
 * @param computeShare every replica's compute share; 0 = no compute cap
 * @param selectorFraction share of deployments with a GPU-product node selector
 * @param spreadFraction share of deployments with maxReplicasPerNode 1 or 2
 * @param foreignFraction share of GPUs with 1-4 GiB used by something else
 */
public record FleetSpec(
        String name,
        int nodes,
        int gpusPerNode,
        List<GpuType> gpuMix,
        List<KnownModel> models,
        List<KnownModel.Quant> quants,
        double zipfExponent,
        int targetReplicas,
        int maxReplicas,
        List<Integer> contexts,
        double computeShare,
        double selectorFraction,
        double spreadFraction,
        double foreignFraction) {

    public FleetSpec {
        gpuMix = List.copyOf(gpuMix);
        models = List.copyOf(models);
        quants = List.copyOf(quants);
        contexts = List.copyOf(contexts);
        if (nodes <= 0 || gpusPerNode <= 0 || targetReplicas < 0 || maxReplicas <= 0) {
            throw new IllegalArgumentException("fleet " + name + ": nodes, GPUs per node and maxReplicas must be > 0");
        }
    }

    public FleetSpec withComputeShare(String newName, double share) {
        return new FleetSpec(
                newName,
                nodes,
                gpusPerNode,
                gpuMix,
                models,
                quants,
                zipfExponent,
                targetReplicas,
                maxReplicas,
                contexts,
                share,
                selectorFraction,
                spreadFraction,
                foreignFraction);
    }
}
