using System.Text.Json;
using System.Text.Json.Serialization;

namespace MemoryCluster.Api.Meta;

/// <summary>Kubernetes' <c>metav1.Condition</c>.</summary>
public sealed record Condition
{
    /// <summary>Type of condition in CamelCase, e.g. <c>Ready</c>.</summary>
    public required string Type { get; init; }

    /// <summary>Status of the condition: True, False or Unknown.</summary>
    public required string Status { get; init; }

    /// <summary>The metadata.generation the condition was computed from.</summary>
    public long? ObservedGeneration { get; init; }

    /// <summary>Last time the condition changed from one status to another.</summary>
    public required DateTimeOffset LastTransitionTime { get; init; }

    /// <summary>A CamelCase word giving the reason for the last transition.</summary>
    public required string Reason { get; init; }

    /// <summary>A human-readable message about the transition.</summary>
    public required string Message { get; init; }

    /// <summary>Fields this version does not model, kept so that a read-modify-write round trip loses nothing.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unmodeled { get; init; }
}

/// <summary>The three values of a condition's status.</summary>
public static class ConditionStatus
{
    public const string True = "True";
    public const string False = "False";
    public const string Unknown = "Unknown";
}
