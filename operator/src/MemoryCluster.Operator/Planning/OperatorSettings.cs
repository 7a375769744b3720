namespace MemoryCluster.Operator.Planning;

/// <summary>
/// What the operator process is configured with (the chart's values) that shapes the objects it renders.
/// </summary>
/// <param name="ComputeImage">Image of the compute pods (the spec names only the PostgreSQL image).</param>
/// <param name="RunAsUser">uid and gid of every container, and the pods' fsGroup: the images' non-root user.</param>
/// <param name="TerminationGraceSeconds">
/// Grace of an instance pod: long enough for its manager to hand the primary over and stop PostgreSQL cleanly.
/// </param>
/// <param name="BindPodIp">
/// Every process of the pods listens on its pod IP only (from <c>status.podIP</c>) instead of every address: for
/// clusters whose pods share one network namespace (the chart's <c>bindPodIP</c>).
/// </param>
public sealed record OperatorSettings(string ComputeImage, long RunAsUser, long TerminationGraceSeconds, bool BindPodIp = false)
{
    public const string DefaultComputeImage = "ghcr.io/memorycluster/compute:0.1.0";

    public static OperatorSettings Default { get; } = new(DefaultComputeImage, RunAsUser: 26, TerminationGraceSeconds: 60);
}
