using System.Text.Json.Nodes;
using MemoryCluster.Api;
using MemoryCluster.Api.Crd;

namespace MemoryCluster.Cli.Manifests;

/// <summary>
/// The fields of a manifest that the CRD's structural schema does not declare, as <c>kubectl apply</c> with strict
/// field validation finds them (the API server would otherwise drop them without a word). Pure.
/// </summary>
internal static class UnknownFields
{
    private static readonly Lazy<JsonObject> Schema = new(() =>
        (JsonObject)CrdBuilder.Build(XmlDocumentation.Empty)["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!);

    /// <summary>Every undeclared field of <paramref name="document"/> (a MemoryCluster), by path, with a nearby declared name when one is close.</summary>
    public static IReadOnlyList<ValidationError> Find(JsonObject document) => Find(document, Schema.Value);

    /// <summary>Every field of <paramref name="node"/> that <paramref name="schema"/> does not declare.</summary>
    public static IReadOnlyList<ValidationError> Find(JsonNode? node, JsonObject schema)
    {
        var errors = new List<ValidationError>();
        Walk(node, schema, string.Empty, errors);
        return errors;
    }

    private static void Walk(JsonNode? node, JsonObject schema, string path, List<ValidationError> errors)
    {
        if (schema["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true)
        {
            return;
        }

        switch (node)
        {
            case JsonObject obj when schema["properties"] is JsonObject properties:
                foreach (var (key, value) in obj)
                {
                    var at = path.Length == 0 ? key : $"{path}.{key}";
                    if (properties[key] is JsonObject declared)
                    {
                        Walk(value, declared, at, errors);
                    }
                    else if (path.Length == 0 && key is "apiVersion" or "kind" or "metadata")
                    {
                        // Checked by the API server as ObjectMeta and type meta, not by the CRD's schema.
                    }
                    else
                    {
                        var near = Nearest(key, properties.Select(p => p.Key));
                        errors.Add(new(at, "unknown field: the MemoryCluster schema has no such field" + (near is null ? string.Empty : $" (did you mean '{near}'?)")));
                    }
                }

                break;
            case JsonObject map when schema["additionalProperties"] is JsonObject values:
                foreach (var (key, value) in map)
                {
                    Walk(value, values, $"{path}.{key}", errors);
                }

                break;
            case JsonArray list when schema["items"] is JsonObject items:
                for (var i = 0; i < list.Count; i++)
                {
                    Walk(list[i], items, $"{path}[{i}]", errors);
                }

                break;
        }
    }

    /// <summary>The declared name at edit distance 2 or less from <paramref name="key"/> (the closest), or null.</summary>
    internal static string? Nearest(string key, IEnumerable<string> declared) =>
        declared.Select(d => (Name: d, Distance: Distance(key.ToLowerInvariant(), d.ToLowerInvariant())))
            .Where(d => d.Distance <= 2)
            .OrderBy(d => d.Distance).ThenBy(d => d.Name, StringComparer.Ordinal)
            .Select(d => d.Name)
            .FirstOrDefault();

    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
