using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using MemoryCluster.Api.Meta;

namespace MemoryCluster.Kube.Resources;

// Typed resources model the fields the operator reads or writes; every record keeps the rest in Unmodeled so a
// read-modify-write round trip loses nothing. Deep trees the operator renders whole (pod templates, probes) are
// JsonObject: typing all of core/v1 would be a generator's job, not this file's.

/// <summary>core/v1 Pod.</summary>
public sealed record Pod : IKubernetesObject
{
    public string ApiVersion { get; init; } = "v1";

    public string Kind { get; init; } = "Pod";

    public ObjectMeta Metadata { get; init; } = new();

    public JsonObject? Spec { get; init; }

    public PodStatus? Status { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record PodStatus
{
    public string? Phase { get; init; }

    public string? PodIP { get; init; }

    public IReadOnlyList<PodCondition>? Conditions { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record PodCondition
{
    public string? Type { get; init; }

    public string? Status { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>core/v1 Service.</summary>
public sealed record Service : IKubernetesObject
{
    public string ApiVersion { get; init; } = "v1";

    public string Kind { get; init; } = "Service";

    public ObjectMeta Metadata { get; init; } = new();

    public ServiceSpec? Spec { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record ServiceSpec
{
    public string? Type { get; init; }

    public string? ClusterIP { get; init; }

    public IReadOnlyDictionary<string, string>? Selector { get; init; }

    public IReadOnlyList<ServicePort>? Ports { get; init; }

    public bool? PublishNotReadyAddresses { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

public sealed record ServicePort
{
    public string? Name { get; init; }

    public int Port { get; init; }

    public JsonNode? TargetPort { get; init; }

    public string? Protocol { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>core/v1 Secret. <c>data</c> values are base64 in JSON and bytes here.</summary>
public sealed record Secret : IKubernetesObject
{
    public string ApiVersion { get; init; } = "v1";

    public string Kind { get; init; } = "Secret";

    public ObjectMeta Metadata { get; init; } = new();

    public string? Type { get; init; }

    public IReadOnlyDictionary<string, byte[]>? Data { get; init; }

    public IReadOnlyDictionary<string, string>? StringData { get; init; }

    public bool? Immutable { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>core/v1 ConfigMap.</summary>
public sealed record ConfigMap : IKubernetesObject
{
    public string ApiVersion { get; init; } = "v1";

    public string Kind { get; init; } = "ConfigMap";

    public ObjectMeta Metadata { get; init; } = new();

    public IReadOnlyDictionary<string, string>? Data { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>core/v1 ServiceAccount.</summary>
public sealed record ServiceAccount : IKubernetesObject
{
    public string ApiVersion { get; init; } = "v1";

    public string Kind { get; init; } = "ServiceAccount";

    public ObjectMeta Metadata { get; init; } = new();

    public bool? AutomountServiceAccountToken { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>core/v1 PersistentVolumeClaim.</summary>
public sealed record PersistentVolumeClaim : IKubernetesObject
{
    public string ApiVersion { get; init; } = "v1";

    public string Kind { get; init; } = "PersistentVolumeClaim";

    public ObjectMeta Metadata { get; init; } = new();

    public JsonObject? Spec { get; init; }

    public JsonObject? Status { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>core/v1 Event (the older API; <see cref="EventsV1Event"/> is what we write).</summary>
public sealed record CoreEvent : IKubernetesObject
{
    public string ApiVersion { get; init; } = "v1";

    public string Kind { get; init; } = "Event";

    public ObjectMeta Metadata { get; init; } = new();

    public ObjectReference? InvolvedObject { get; init; }

    public string? Reason { get; init; }

    public string? Message { get; init; }

    public string? Type { get; init; }

    public int? Count { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>core/v1 ObjectReference.</summary>
public sealed record ObjectReference
{
    public string? ApiVersion { get; init; }

    public string? Kind { get; init; }

    public string? Name { get; init; }

    [JsonPropertyName("namespace")]
    public string? Namespace { get; init; }

    public string? Uid { get; init; }

    public string? ResourceVersion { get; init; }

    public string? FieldPath { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>A label selector (<c>matchLabels</c>, <c>matchExpressions</c>).</summary>
public sealed record LabelSelector
{
    public IReadOnlyDictionary<string, string>? MatchLabels { get; init; }

    public JsonArray? MatchExpressions { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}
