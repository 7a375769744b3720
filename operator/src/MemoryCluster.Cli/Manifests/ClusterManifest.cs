using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using MemoryCluster.Api;

namespace MemoryCluster.Cli.Manifests;

/// <summary>A MemoryCluster read from a manifest, with every rule it breaks.</summary>
internal sealed partial record ClusterManifest(string Name, MemoryClusterResource? Cluster, IReadOnlyList<ValidationError> Errors)
{
    /// <summary>
    /// Reads every MemoryCluster document in <paramref name="yaml"/>; documents of other kinds are skipped.
    /// A field of the wrong type is reported with its path, like any other broken rule.
    /// </summary>
    public static IReadOnlyList<ClusterManifest> Read(string yaml, string? oldYaml = null)
    {
        var old = oldYaml is null ? [] : Read(oldYaml);
        var result = new List<ClusterManifest>();
        foreach (var document in YamlJson.ToJson(yaml))
        {
            if (document is not JsonObject obj || obj["kind"]?.GetValue<string>() != ApiGroup.Kind)
            {
                continue;
            }

            var name = obj["metadata"]?["name"]?.GetValue<string>() ?? "(unnamed)";
            if (obj["apiVersion"]?.GetValue<string>() is var version && version != ApiGroup.ApiVersion)
            {
                result.Add(new(name, null, [new ValidationError("apiVersion", $"must be {ApiGroup.ApiVersion}, not '{version}'")]));
                continue;
            }

            MemoryClusterResource cluster;
            try
            {
                cluster = ApiJson.Deserialize(obj.ToJsonString());
            }
            catch (JsonException e)
            {
                var path = (e.Path ?? "$").TrimStart('$').TrimStart('.');
                result.Add(new(name, null, [new ValidationError(path.Length == 0 ? "(document)" : path, FirstSentence(e.Message))]));
                continue;
            }

            var previous = old.FirstOrDefault(o => o.Name == name)?.Cluster;
            result.Add(new(name, cluster, [.. UnknownFields.Find(obj).Where(u => !Removed(u.Path)), .. SpecValidator.Validate(cluster, previous)]));
        }

        return result;
    }

    /// <summary>Removed fields get the validator's own message, saying what replaced them.</summary>
    private static bool Removed(string path) => SpecValidator.RemovedFieldPaths.Contains(path);

    private static string FirstSentence(string message)
    {
        if (message.Contains("doesn't allow setting null values", StringComparison.Ordinal))
        {
            return "must not be null (leave the field out to take its default)";
        }

        var match = TargetType().Match(message);
        if (!match.Success)
        {
            var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
            return "cannot be read: " + (cut > 0 ? message[..cut] : message);
        }

        var expected = match.Groups[1].Value switch
        {
            "System.Int32" or "System.Int64" => "an integer",
            "System.Boolean" => "true or false",
            "System.String" => "a string",
            "MemoryCluster.Api.Quantity" => "a quantity such as 10Gi",
            var t when t.Contains("Dictionary", StringComparison.Ordinal) => "a map",
            var t when t.Contains("List", StringComparison.Ordinal) => "a list",
            _ => "an object",
        };
        return $"must be {expected}";
    }

    [GeneratedRegex(@"could not be converted to ([^\s]+?)\.?(\s|$)")]
    private static partial Regex TargetType();
}
