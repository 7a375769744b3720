using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using MemoryCluster.Api.Crd;

namespace MemoryCluster.Api.Tests;

internal static class Fixtures
{
    private static readonly Lazy<JsonObject> LazyCrd = new(() =>
        CrdBuilder.Build(new XmlDocumentation(XDocument.Load(Path.Combine(AppContext.BaseDirectory, "MemoryCluster.Api.xml")))));

    /// <summary>A fresh copy of the generated CRD.</summary>
    public static JsonObject Crd => (JsonObject)LazyCrd.Value.DeepClone();

    /// <summary>The openAPIV3Schema of the generated CRD.</summary>
    public static JsonObject Schema => (JsonObject)Crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!;

    public static MemoryClusterResource Valid(string name = "demo") => new() { Metadata = new() { Name = name } };

    /// <summary>The schema node at a dotted field path such as <c>spec.storage</c> (empty for the root).</summary>
    public static JsonObject SchemaAt(string path)
    {
        var node = Schema;
        if (path.Length == 0)
        {
            return node;
        }

        foreach (var part in path.Split('.'))
        {
            node = (JsonObject)node["properties"]![part]!;
        }

        return node;
    }

    public static JsonNode ToJsonNode(MemoryClusterResource cluster) =>
        JsonSerializer.SerializeToNode(cluster, ApiJson.Options)!;
}
