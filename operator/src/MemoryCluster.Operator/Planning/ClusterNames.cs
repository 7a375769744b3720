using MemoryCluster.Api;

namespace MemoryCluster.Operator.Planning;

/// <summary>
/// The deterministic names of what a MemoryCluster owns: the same cluster always gives the same names, so a
/// reconcile finds what an earlier one made. The CRD caps the cluster's name at 50 characters so that every
/// name here (and a pod name with its ordinal) stays within Kubernetes' 63.
/// </summary>
public sealed record ClusterNames(string Cluster, string Namespace)
{
    public static ClusterNames Of(MemoryClusterResource cluster) =>
        new(cluster.Metadata.Name ?? throw new ArgumentException("the MemoryCluster has no metadata.name", nameof(cluster)),
            cluster.Metadata.Namespace ?? "default");

    public string SuperuserSecret => Cluster + "-superuser";

    public string ReplicationSecret => Cluster + "-replication";

    public string AppSecret => Cluster + "-app";

    public string ClusterKeySecret => Cluster + "-cluster-key";

    /// <summary>The bearer token the compute service's writes need (<c>token</c>), made once.</summary>
    public string ComputeTokenSecret => Cluster + "-compute-token";

    /// <summary>The cluster's certificate authority: <c>ca.crt</c> and <c>ca.key</c>, made once.</summary>
    public string CaSecret => Cluster + "-ca";

    /// <summary>The instances' server certificate (kubernetes.io/tls: <c>tls.crt</c>, <c>tls.key</c>, <c>ca.crt</c>), renewed before it ends.</summary>
    public string ServerTlsSecret => Cluster + "-server-tls";

    public string Config => Cluster + "-config";

    /// <summary>Headless Service: stable DNS names for Raft and replication, not-ready addresses published.</summary>
    public string Headless => Cluster + "-hl";

    /// <summary>Service of the primary (read-write).</summary>
    public string ReadWrite => Cluster + "-rw";

    /// <summary>Service of the replicas (read-only).</summary>
    public string ReadOnly => Cluster + "-ro";

    /// <summary>Service of any ready instance.</summary>
    public string Read => Cluster + "-r";

    public string StatefulSet => Cluster;

    public string DisruptionBudget => Cluster;

    /// <summary>ServiceAccount, Role and RoleBinding of the instance pods.</summary>
    public string InstanceAccount => Cluster + "-instance";

    public string Compute => Cluster + "-compute";

    /// <summary>The pod of ordinal <paramref name="ordinal"/> (0-based), as the StatefulSet names it.</summary>
    public string Pod(int ordinal) => $"{Cluster}-{ordinal}";

    /// <summary>The pod's stable DNS name through the headless Service.</summary>
    public string PodHost(int ordinal) => $"{Pod(ordinal)}.{Headless}.{Namespace}.svc";

    /// <summary>The read-write Service's DNS name.</summary>
    public string ReadWriteHost => $"{ReadWrite}.{Namespace}.svc";

    public string ReadOnlyHost => $"{ReadOnly}.{Namespace}.svc";
}

/// <summary>The labels the operator sets and selects on.</summary>
public static class ClusterLabels
{
    /// <summary>The MemoryCluster an object belongs to.</summary>
    public const string Cluster = "memorycluster.io/cluster";

    /// <summary>Set by each instance manager on its own pod: <c>primary</c> or <c>replica</c>; the -rw and -ro Services select it.</summary>
    public const string Role = "memorycluster.io/role";

    public const string Name = "app.kubernetes.io/name";
    public const string Instance = "app.kubernetes.io/instance";
    public const string Component = "app.kubernetes.io/component";
    public const string ManagedBy = "app.kubernetes.io/managed-by";

    public const string PostgresComponent = "postgres";
    public const string ComputeComponent = "compute";
    public const string Manager = "memorycluster-operator";

    /// <summary>The labels every owned object carries.</summary>
    public static Dictionary<string, string> For(ClusterNames names, string component) => new(StringComparer.Ordinal)
    {
        [Name] = "memorycluster",
        [Instance] = names.Cluster,
        [Component] = component,
        [ManagedBy] = Manager,
        [Cluster] = names.Cluster,
    };

    /// <summary>The selector of one component's pods: two labels, never changed (a StatefulSet's selector is immutable).</summary>
    public static Dictionary<string, string> Selector(ClusterNames names, string component) => new(StringComparer.Ordinal)
    {
        [Cluster] = names.Cluster,
        [Component] = component,
    };
}

/// <summary>The fixed ports of every instance and compute pod (each pod has its own address).</summary>
public static class ClusterPorts
{
    public const int Postgres = 5432;
    public const int Raft = 7000;

    /// <summary>The instance manager's HTTP API: /healthz, /readyz, /status, /metrics and the signed internal calls.</summary>
    public const int Manager = 8000;

    public const int Compute = 8080;
}
