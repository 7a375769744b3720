using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using MemoryCluster.Api.Meta;
using MemoryCluster.Kube.Serialization;

namespace MemoryCluster.Kube.Resources;

/// <summary>apps/v1 StatefulSet.</summary>
public sealed record StatefulSet : IKubernetesObject
{
    public string ApiVersion { get; init; } = "apps/v1";

    public string Kind { get; init; } = "StatefulSet";

    public ObjectMeta Metadata { get; init; } = new();

    public StatefulSetSpec? Spec { get; init; }

    public WorkloadStatus? Status { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record StatefulSetSpec
{
    public int? Replicas { get; init; }

    public string? ServiceName { get; init; }

    public LabelSelector? Selector { get; init; }

    public JsonObject? Template { get; init; }

    public JsonArray? VolumeClaimTemplates { get; init; }

    public string? PodManagementPolicy { get; init; }

    public JsonObject? UpdateStrategy { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>The status fields StatefulSets and Deployments share.</summary>
public sealed record WorkloadStatus
{
    public long? ObservedGeneration { get; init; }

    public int? Replicas { get; init; }

    public int? ReadyReplicas { get; init; }

    public int? AvailableReplicas { get; init; }

    public int? UpdatedReplicas { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>apps/v1 Deployment.</summary>
public sealed record Deployment : IKubernetesObject
{
    public string ApiVersion { get; init; } = "apps/v1";

    public string Kind { get; init; } = "Deployment";

    public ObjectMeta Metadata { get; init; } = new();

    public DeploymentSpec? Spec { get; init; }

    public WorkloadStatus? Status { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record DeploymentSpec
{
    public int? Replicas { get; init; }

    public LabelSelector? Selector { get; init; }

    public JsonObject? Template { get; init; }

    public JsonObject? Strategy { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>policy/v1 PodDisruptionBudget.</summary>
public sealed record PodDisruptionBudget : IKubernetesObject
{
    public string ApiVersion { get; init; } = "policy/v1";

    public string Kind { get; init; } = "PodDisruptionBudget";

    public ObjectMeta Metadata { get; init; } = new();

    public PodDisruptionBudgetSpec? Spec { get; init; }

    public JsonObject? Status { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record PodDisruptionBudgetSpec
{
    public JsonNode? MinAvailable { get; init; }

    public JsonNode? MaxUnavailable { get; init; }

    public LabelSelector? Selector { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>rbac.authorization.k8s.io/v1 Role.</summary>
public sealed record Role : IKubernetesObject
{
    public string ApiVersion { get; init; } = "rbac.authorization.k8s.io/v1";

    public string Kind { get; init; } = "Role";

    public ObjectMeta Metadata { get; init; } = new();

    public IReadOnlyList<PolicyRule>? Rules { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record PolicyRule
{
    public IReadOnlyList<string>? ApiGroups { get; init; }

    public IReadOnlyList<string>? Resources { get; init; }

    public IReadOnlyList<string>? ResourceNames { get; init; }

    public IReadOnlyList<string>? Verbs { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>rbac.authorization.k8s.io/v1 RoleBinding.</summary>
public sealed record RoleBinding : IKubernetesObject
{
    public string ApiVersion { get; init; } = "rbac.authorization.k8s.io/v1";

    public string Kind { get; init; } = "RoleBinding";

    public ObjectMeta Metadata { get; init; } = new();

    public RoleRef? RoleRef { get; init; }

    public IReadOnlyList<Subject>? Subjects { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record RoleRef
{
    public string? ApiGroup { get; init; }

    public string? Kind { get; init; }

    public string? Name { get; init; }
}

public sealed record Subject
{
    public string? Kind { get; init; }

    public string? Name { get; init; }

    [JsonPropertyName("namespace")]
    public string? Namespace { get; init; }

    public string? ApiGroup { get; init; }
}

/// <summary>coordination.k8s.io/v1 Lease.</summary>
public sealed record Lease : IKubernetesObject
{
    public string ApiVersion { get; init; } = "coordination.k8s.io/v1";

    public string Kind { get; init; } = "Lease";

    public ObjectMeta Metadata { get; init; } = new();

    public LeaseSpec? Spec { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record LeaseSpec
{
    public string? HolderIdentity { get; init; }

    public int? LeaseDurationSeconds { get; init; }

    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset? AcquireTime { get; init; }

    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset? RenewTime { get; init; }

    public int? LeaseTransitions { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>events.k8s.io/v1 Event.</summary>
public sealed record EventsV1Event : IKubernetesObject
{
    public string ApiVersion { get; init; } = "events.k8s.io/v1";

    public string Kind { get; init; } = "Event";

    public ObjectMeta Metadata { get; init; } = new();

    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset EventTime { get; init; }

    public string? ReportingController { get; init; }

    public string? ReportingInstance { get; init; }

    public string? Action { get; init; }

    public string? Reason { get; init; }

    public ObjectReference? Regarding { get; init; }

    public string? Note { get; init; }

    public string? Type { get; init; }

    public EventSeries? Series { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record EventSeries
{
    public int Count { get; init; }

    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset LastObservedTime { get; init; }
}

/// <summary>apiextensions.k8s.io/v1 CustomResourceDefinition; the spec is kept whole.</summary>
public sealed record CustomResourceDefinition : IKubernetesObject
{
    public string ApiVersion { get; init; } = "apiextensions.k8s.io/v1";

    public string Kind { get; init; } = "CustomResourceDefinition";

    public ObjectMeta Metadata { get; init; } = new();

    public JsonObject? Spec { get; init; }

    public CustomResourceDefinitionStatus? Status { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record CustomResourceDefinitionStatus
{
    public IReadOnlyList<Condition>? Conditions { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}
