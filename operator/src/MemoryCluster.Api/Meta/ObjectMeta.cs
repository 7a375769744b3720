using System.Text.Json;
using System.Text.Json.Serialization;

namespace MemoryCluster.Api.Meta;

/// <summary>The parts of Kubernetes' <c>metav1.ObjectMeta</c> that MemoryCluster reads or writes.</summary>
public sealed record ObjectMeta
{
    public string? Name { get; init; }

    [JsonPropertyName("namespace")]
    public string? Namespace { get; init; }

    public string? Uid { get; init; }

    public string? ResourceVersion { get; init; }

    public long? Generation { get; init; }

    public DateTimeOffset? CreationTimestamp { get; init; }

    public DateTimeOffset? DeletionTimestamp { get; init; }

    public IReadOnlyDictionary<string, string>? Labels { get; init; }

    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    public IReadOnlyList<string>? Finalizers { get; init; }

    public IReadOnlyList<OwnerReference>? OwnerReferences { get; init; }

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>Kubernetes' <c>metav1.OwnerReference</c>.</summary>
public sealed record OwnerReference
{
    public required string ApiVersion { get; init; }

    public required string Kind { get; init; }

    public required string Name { get; init; }

    public required string Uid { get; init; }

    public bool? Controller { get; init; }

    public bool? BlockOwnerDeletion { get; init; }

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}
