namespace MemoryCluster.Api;

/// <summary>The values of <c>status.phase</c>: one word for where the cluster is in its life.</summary>
public static class Phases
{
    public const string Pending = "Pending";
    public const string Bootstrapping = "Bootstrapping";
    public const string Healthy = "Healthy";
    public const string Degraded = "Degraded";
    public const string FailingOver = "FailingOver";
    public const string SwitchingOver = "SwitchingOver";
    public const string Scaling = "Scaling";
    public const string Invalid = "Invalid";

    public static IReadOnlyList<string> All { get; } =
        [Pending, Bootstrapping, Healthy, Degraded, FailingOver, SwitchingOver, Scaling, Invalid];
}
