namespace MemoryCluster.Api;

/// <summary>Names of the MemoryCluster API as Kubernetes knows it.</summary>
public static class ApiGroup
{
    public const string Group = "memorycluster.io";
    public const string Version = "v1alpha1";
    public const string ApiVersion = Group + "/" + Version;
    public const string Kind = "MemoryCluster";
    public const string ListKind = "MemoryClusterList";
    public const string Plural = "memoryclusters";
    public const string Singular = "memorycluster";
    public const string ShortName = "mc";
    public const string CrdName = Plural + "." + Group;

    /// <summary>Label put on every instance pod naming its current role.</summary>
    public const string RoleLabel = Group + "/role";

    /// <summary>Label naming the cluster an object belongs to.</summary>
    public const string ClusterLabel = Group + "/cluster";
}
