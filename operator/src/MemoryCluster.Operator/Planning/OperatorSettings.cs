namespace MemoryCluster.Operator.Planning;

/// <summary>
/// What the operator process is configured with (the chart's values) that shapes the objects it renders.
/// </summary>
/// <param name="ComputeImage">Image of the compute pods (the spec names only the PostgreSQL image).</param>
/// <param name="InstanceImage">Image of the instance pods of a MemoryCluster whose spec.postgres.image is unset.</param>
/// <param name="RunAsUser">uid and gid of every container, and the pods' fsGroup: the images' non-root user.</param>
/// <param name="TerminationGraceSeconds">
/// Grace of an instance pod: long enough for its manager to hand the primary over and stop PostgreSQL cleanly.
/// </param>
/// <param name="BindPodIp">
/// Every process of the pods listens on its pod IP only (from <c>status.podIP</c>) instead of every address: for
/// clusters whose pods share one network namespace (the chart's <c>bindPodIP</c>).
/// </param>
public sealed record OperatorSettings(string ComputeImage, long RunAsUser, long TerminationGraceSeconds, bool BindPodIp = false, string InstanceImage = OperatorSettings.DefaultInstanceImage)
{
    /// <summary>The images of this operator's own version (make images builds them under these names, without the registry).</summary>
    public const string DefaultComputeImage = "ghcr.io/memorycluster/memorycluster-compute:" + ImageVersion;

    /// <inheritdoc cref="DefaultComputeImage"/>
    public const string DefaultInstanceImage = "ghcr.io/memorycluster/memorycluster-instance:" + ImageVersion;

    /// <summary>The version the images are tagged with: the product's (Directory.Build.props; a test keeps them equal).</summary>
    public const string ImageVersion = "0.1.0";

    public static OperatorSettings Default { get; } = new(DefaultComputeImage, RunAsUser: 26, TerminationGraceSeconds: 60);
}
