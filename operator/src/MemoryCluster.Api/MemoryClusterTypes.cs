using System.Text.Json;
using System.Text.Json.Serialization;
using MemoryCluster.Api.Crd;
using MemoryCluster.Api.Meta;

namespace MemoryCluster.Api;

/// <summary>
/// A highly available PostgreSQL cluster of 3 or 5 instances, with failover decided by a Raft quorum of the
/// instance managers, and a compute tier that keeps the knowledge graph and its embeddings in memory.
/// </summary>
[CelRule(RuleIds.NameLength, "self.metadata.name.size() <= 50",
    "metadata.name must be at most 50 characters (child objects append suffixes and Kubernetes names stop at 63)")]
public sealed record MemoryClusterResource
{
    public string ApiVersion { get; init; } = ApiGroup.ApiVersion;

    public string Kind { get; init; } = ApiGroup.Kind;

    public ObjectMeta Metadata { get; init; } = new();

    /// <summary>The desired state of the cluster.</summary>
    public MemoryClusterSpec Spec { get; init; } = new();

    /// <summary>The observed state of the cluster, written by the operator.</summary>
    public MemoryClusterStatus? Status { get; init; }

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>The desired state of a MemoryCluster.</summary>
public sealed record MemoryClusterSpec
{
    /// <summary>Number of PostgreSQL instances: 3 or 5, so that a Raft majority survives one or two failures.</summary>
    [CelRule(RuleIds.InstancesThreeOrFive, "self == 3 || self == 5", "must be 3 or 5 (2-node clusters cannot hold a safe majority)")]
    public int Instances { get; init; } = 3;

    /// <summary>The PostgreSQL server every instance runs.</summary>
    public PostgresSpec Postgres { get; init; } = new();

    /// <summary>The persistent volume of every instance.</summary>
    public StorageSpec Storage { get; init; } = new();

    /// <summary>How data reaches the replicas.</summary>
    public ReplicationSpec Replication { get; init; } = new();

    /// <summary>The compute tier serving graph traversal, nearest-neighbour and fused queries.</summary>
    public ComputeSpec Compute { get; init; } = new();

    /// <summary>Where the instance pods may run.</summary>
    public SchedulingSpec Scheduling { get; init; } = new();

    /// <summary>Metrics for Prometheus.</summary>
    public MonitoringSpec Monitoring { get; init; } = new();

    /// <summary>Who may reach the instances (a NetworkPolicy when enabled).</summary>
    public NetworkPolicySpec NetworkPolicy { get; init; } = new();

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>Who may reach the instances.</summary>
public sealed record NetworkPolicySpec
{
    /// <summary>
    /// Create a NetworkPolicy (off by default) that admits to the instance pods only: their peers (Postgres, Raft and
    /// the manager's API), the operator (the manager's API), and clients and compute pods on the Postgres port; with
    /// monitoring enabled, also scrapes of the manager's port.
    /// </summary>
    public bool Enabled { get; init; }

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>The PostgreSQL server of every instance.</summary>
public sealed record PostgresSpec
{
    /// <summary>
    /// Container image holding PostgreSQL 15 and the memorycluster instance manager. Unset: the operator's default
    /// (its --instance-image, the chart's instanceImage: the instance image of the operator's own version), so an
    /// upgrade of the operator moves the cluster to its image by a rolling update.
    /// </summary>
    [Bounds(1, 512)]
    public string? Image { get; init; }

    /// <summary>
    /// Extra postgresql.conf parameters. Keys the instance manager owns (port, listen_addresses, wal_level,
    /// hot_standby, primary_conninfo, primary_slot_name, synchronous_standby_names and the like) are refused.
    /// </summary>
    [CelRule(RuleIds.ParametersNotManaged, Defaults.ManagedParametersCel,
        "keys managed by the instance manager cannot be set")]
    [MaxItems(128)]
    [Matches("^[^\\n\\r\\x00]*$")]
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();

    /// <summary>CPU and memory for the PostgreSQL container.</summary>
    public ResourceRequirements Resources { get; init; } = new();

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>Compute resources of a container, as in Kubernetes' <c>ResourceRequirements</c>.</summary>
public sealed record ResourceRequirements
{
    /// <summary>Minimum resources the container needs, e.g. cpu: 500m, memory: 1Gi.</summary>
    public IReadOnlyDictionary<string, Quantity> Requests { get; init; } = new Dictionary<string, Quantity>();

    /// <summary>Maximum resources the container may use.</summary>
    public IReadOnlyDictionary<string, Quantity> Limits { get; init; } = new Dictionary<string, Quantity>();

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>The persistent volume of every instance.</summary>
[CelRule(RuleIds.StorageClassImmutable,
    "!has(oldSelf.storageClassName) || (has(self.storageClassName) && self.storageClassName == oldSelf.storageClassName)",
    "storageClassName is immutable once set")]
public sealed record StorageSpec
{
    /// <summary>Size of each instance's volume, a Kubernetes quantity such as 10Gi.</summary>
    public Quantity Size { get; init; } = new(Defaults.StorageSize);

    /// <summary>Storage class of the volumes; the cluster default when unset. Immutable once set.</summary>
    [Bounds(1, 253)]
    public string? StorageClassName { get; init; }

    /// <summary>
    /// What happens to the instances' volumes (PersistentVolumeClaims) when the MemoryCluster is deleted: Retain
    /// (the default: the data outlives the cluster; delete the claims by hand) or Delete. Volumes of members
    /// removed by a scale down are always kept.
    /// </summary>
    [OneOf(ClaimRetention.Retain, ClaimRetention.Delete)]
    public string WhenDeleted { get; init; } = ClaimRetention.Retain;

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>The values of <c>spec.storage.whenDeleted</c> (a StatefulSet's claim retention policy).</summary>
public static class ClaimRetention
{
    public const string Retain = "Retain";
    public const string Delete = "Delete";
}

/// <summary>How data reaches the replicas.</summary>
/// <remarks>
/// Failover timing is not part of the spec: it follows from the instance manager's one setting,
/// <c>primary-lease-ms</c> (docs/failover.md, "Tuning"). The fields <c>leaseSeconds</c> and
/// <c>failoverDelaySeconds</c> were removed; <see cref="SpecValidator"/> names them when a manifest still sets them.
/// </remarks>
public sealed record ReplicationSpec
{
    /// <summary>
    /// <c>async</c>: commits return once local (fastest; a failover may lose the last writes).
    /// <c>quorum</c>: commits wait for enough replicas that every acknowledged write survives a failover.
    /// </summary>
    [OneOf(ReplicationModes.Async, ReplicationModes.Quorum)]
    public string Mode { get; init; } = ReplicationModes.Async;

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>The replication modes.</summary>
public static class ReplicationModes
{
    public const string Async = "async";
    public const string Quorum = "quorum";
}

/// <summary>The compute tier.</summary>
public sealed record ComputeSpec
{
    /// <summary>Number of compute pods; 0 turns the compute tier off.</summary>
    [Bounds(0, 16)]
    public int Replicas { get; init; } = 1;

    /// <summary>CPU and memory for each compute pod.</summary>
    public ResourceRequirements Resources { get; init; } = new();

    /// <summary>Length of every embedding vector stored in the cluster.</summary>
    [Bounds(1, 4096)]
    public int EmbeddingDimensions { get; init; } = Defaults.EmbeddingDimensions;

    /// <summary>Parameters of the HNSW nearest-neighbour index.</summary>
    public HnswSpec Hnsw { get; init; } = new();

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>Parameters of the HNSW nearest-neighbour index.</summary>
[CelRule(RuleIds.EfConstructionAtLeastM, "self.efConstruction >= self.m", "efConstruction must be at least m")]
public sealed record HnswSpec
{
    /// <summary>Links per node on each layer above the bottom one (the bottom layer keeps twice as many).</summary>
    [Bounds(2, 100)]
    public int M { get; init; } = 16;

    /// <summary>Candidate list size while building; larger builds a better graph, more slowly.</summary>
    [Bounds(1, 4096)]
    public int EfConstruction { get; init; } = 200;

    /// <summary>Candidate list size while searching; larger finds more true neighbours, more slowly.</summary>
    [Bounds(1, 4096)]
    public int EfSearch { get; init; } = 64;

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>Where the instance pods may run.</summary>
public sealed record SchedulingSpec
{
    /// <summary>
    /// <c>required</c>: never two instances on one node (pods stay Pending when nodes run short).
    /// <c>preferred</c>: spread when possible.
    /// </summary>
    [OneOf(AntiAffinityModes.Required, AntiAffinityModes.Preferred)]
    public string AntiAffinity { get; init; } = AntiAffinityModes.Preferred;

    /// <summary>Node label that anti-affinity spreads across.</summary>
    [Bounds(1, 316)]
    public string TopologyKey { get; init; } = Defaults.HostnameTopologyKey;

    /// <summary>Optional topology spread constraint for the instance pods, e.g. across zones.</summary>
    public TopologySpreadSpec? TopologySpread { get; init; }

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>The anti-affinity modes.</summary>
public static class AntiAffinityModes
{
    public const string Required = "required";
    public const string Preferred = "preferred";
}

/// <summary>A topology spread constraint for the instance pods.</summary>
public sealed record TopologySpreadSpec
{
    /// <summary>Node label whose values are the domains to spread across.</summary>
    [Bounds(1, 316)]
    public string TopologyKey { get; init; } = Defaults.ZoneTopologyKey;

    /// <summary>Largest allowed difference in instance count between two domains.</summary>
    [Bounds(1, 5)]
    public int MaxSkew { get; init; } = 1;

    /// <summary>What the scheduler does when the constraint cannot be met.</summary>
    [OneOf("DoNotSchedule", "ScheduleAnyway")]
    public string WhenUnsatisfiable { get; init; } = "ScheduleAnyway";

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>Metrics for Prometheus.</summary>
public sealed record MonitoringSpec
{
    /// <summary>Expose metrics on every instance and create a PodMonitor.</summary>
    public bool Enabled { get; init; }

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>The observed state of a MemoryCluster.</summary>
public sealed record MemoryClusterStatus
{
    /// <summary>One word for where the cluster is in its life, e.g. Healthy or FailingOver.</summary>
    public string? Phase { get; init; }

    /// <summary>Ready, Progressing, Degraded, QuorumHealthy, PrimaryAvailable and ComputeReady.</summary>
    [ListMapKeys("type")]
    [MaxItems(16)]
    public IReadOnlyList<Condition>? Conditions { get; init; }

    /// <summary>Name of the instance that is the primary.</summary>
    public string? CurrentPrimary { get; init; }

    /// <summary>Fencing token: grows by one with every change of primary.</summary>
    public long? Epoch { get; init; }

    /// <summary>Name of the instance whose manager leads the Raft quorum.</summary>
    public string? RaftLeader { get; init; }

    /// <summary>Number of instances ready for their role.</summary>
    public int? ReadyInstances { get; init; }

    /// <summary>Every instance, as last reported by its manager.</summary>
    [ListMapKeys("name")]
    [MaxItems(5)]
    public IReadOnlyList<InstanceStatus>? Instances { get; init; }

    /// <summary>Label selector of the instance pods, for the scale subresource.</summary>
    public string? Selector { get; init; }

    /// <summary>
    /// The Raft member id of each instance pod, as the operator assigned it (ordinal + 1 when the cluster is created;
    /// a new id when the pod of a removed member comes back, since ids are never reused).
    /// </summary>
    [ListMapKeys("name")]
    [MaxItems(5)]
    public IReadOnlyList<MemberIdentity>? Members { get; init; }

    /// <summary>The ids of the members that founded the cluster; every other member joins it (instance setting founders).</summary>
    [MaxItems(5)]
    public IReadOnlyList<long>? FoundingMembers { get; init; }

    /// <summary>The metadata.generation this status was computed from.</summary>
    public long? ObservedGeneration { get; init; }

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>The Raft member id of one instance pod.</summary>
public sealed record MemberIdentity
{
    /// <summary>Name of the instance (its pod).</summary>
    public required string Name { get; init; }

    /// <summary>Its Raft member id.</summary>
    [Bounds(1, 1_000_000)]
    public required long Id { get; init; }

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>One instance as its manager last reported it.</summary>
public sealed record InstanceStatus
{
    /// <summary>Name of the instance (its pod).</summary>
    public required string Name { get; init; }

    /// <summary>primary, replica, or unknown.</summary>
    public string? Role { get; init; }

    /// <summary>PostgreSQL timeline the instance is on.</summary>
    public long? Timeline { get; init; }

    /// <summary>Last WAL position written (primary) or replayed (replica), as PostgreSQL prints it.</summary>
    public string? Lsn { get; init; }

    /// <summary>Bytes of WAL the replica has still to replay; 0 on the primary.</summary>
    public long? LagBytes { get; init; }

    /// <summary>Whether the instance is ready for its role.</summary>
    public bool? Healthy { get; init; }

    /// <summary>Why the instance is not ready, or what it is doing: unreachable, diverged, rewinding, cloning, lagging.</summary>
    public string? Message { get; init; }

    /// <summary>Parameters its PostgreSQL takes only at a restart; the operator restarts the instances in turn.</summary>
    public IReadOnlyList<string>? PendingRestart { get; init; }

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>The roles an instance reports.</summary>
public static class InstanceRoles
{
    public const string Primary = "primary";
    public const string Replica = "replica";
    public const string Unknown = "unknown";
}

/// <summary>Names that tie each CEL rule in the CRD to the same rule in C#.</summary>
public static class RuleIds
{
    public const string InstancesThreeOrFive = "instances-3-or-5";
    public const string ParametersNotManaged = "parameters-not-managed";
    public const string StorageClassImmutable = "storage-class-immutable";
    public const string EfConstructionAtLeastM = "ef-construction-at-least-m";
    public const string NameLength = "name-length";
}
