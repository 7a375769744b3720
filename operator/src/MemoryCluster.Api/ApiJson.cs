using System.Text.Json;
using System.Text.Json.Serialization;

namespace MemoryCluster.Api;

/// <summary>The JSON conventions of the Kubernetes API: camelCase names, nulls left out.</summary>
public static class ApiJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = false,
        RespectNullableAnnotations = true,
    };

    /// <summary>Reads a MemoryCluster from JSON; fields left out take their defaults.</summary>
    public static MemoryClusterResource Deserialize(string json) =>
        JsonSerializer.Deserialize<MemoryClusterResource>(json, Options)
        ?? throw new JsonException("a MemoryCluster document must be a JSON object, not null");

    public static string Serialize(MemoryClusterResource cluster) => JsonSerializer.Serialize(cluster, Options);
}
