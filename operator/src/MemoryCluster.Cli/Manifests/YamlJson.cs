using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace MemoryCluster.Cli.Manifests;

/// <summary>
/// Converts between YAML manifests and JSON trees the way kubectl does: YAML 1.2 core-schema scalars (plain
/// true/false/null/numbers are typed; quoted scalars are strings), one JSON document per YAML document.
/// </summary>
internal static partial class YamlJson
{
    /// <summary>Every document in <paramref name="yaml"/>, as JSON; empty documents are skipped.</summary>
    public static IReadOnlyList<JsonNode> ToJson(string yaml)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new ManifestException($"line {e.Start.Line}, column {e.Start.Column}: {e.Message}", e);
        }

        var documents = new List<JsonNode>();
        foreach (var document in stream.Documents)
        {
            if (Convert(document.RootNode) is { } node)
            {
                documents.Add(node);
            }
        }

        return documents;
    }

    /// <summary>Writes <paramref name="node"/> as one YAML document, keys in their JSON order.</summary>
    public static string FromJson(JsonNode node)
    {
        var stream = new YamlStream(new YamlDocument(ToYaml(node)));
        using var writer = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        var emitter = new Emitter(writer, new EmitterSettings().WithBestWidth(int.MaxValue).WithIndentedSequences());
        stream.Save(emitter, assignAnchors: false);
        var text = writer.ToString();
        return text.EndsWith("...\n", StringComparison.Ordinal) ? text[..^4] : text;
    }

    private static JsonNode? Convert(YamlNode node) => node switch
    {
        YamlMappingNode mapping => ConvertMapping(mapping),
        YamlSequenceNode sequence => new JsonArray([.. sequence.Children.Select(Convert)]),
        YamlScalarNode scalar => ConvertScalar(scalar),
        _ => throw new ManifestException($"line {node.Start.Line}: YAML aliases are not supported in manifests"),
    };

    private static JsonObject ConvertMapping(YamlMappingNode mapping)
    {
        var result = new JsonObject();
        foreach (var (key, value) in mapping.Children)
        {
            if (key is not YamlScalarNode { Value: { } name })
            {
                throw new ManifestException($"line {key.Start.Line}: mapping keys must be plain strings");
            }

            if (result.ContainsKey(name))
            {
                throw new ManifestException($"line {key.Start.Line}: key '{name}' appears twice");
            }

            result[name] = Convert(value);
        }

        return result;
    }

    private static JsonNode? ConvertScalar(YamlScalarNode scalar)
    {
        var text = scalar.Value ?? string.Empty;
        if (scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded)
        {
            return JsonValue.Create(text);
        }

        if (text is "" or "~" or "null" or "Null" or "NULL")
        {
            return null;
        }

        if (text is "true" or "True" or "TRUE")
        {
            return JsonValue.Create(true);
        }

        if (text is "false" or "False" or "FALSE")
        {
            return JsonValue.Create(false);
        }

        if (IntegerPattern().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
        {
            return JsonValue.Create(integer);
        }

        if (FloatPattern().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            return JsonValue.Create(number);
        }

        return JsonValue.Create(text);
    }

    private static YamlNode ToYaml(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return new YamlScalarNode("null") { Style = ScalarStyle.Plain };
            case JsonObject obj:
                var mapping = new YamlMappingNode();
                foreach (var (key, value) in obj)
                {
                    mapping.Add(new YamlScalarNode(key), ToYaml(value));
                }

                return mapping;
            case JsonArray array:
                var sequence = new YamlSequenceNode();
                foreach (var item in array)
                {
                    sequence.Add(ToYaml(item));
                }

                return sequence;
            case JsonValue value when value.TryGetValue<string>(out var text):
                // A string that would read back as another type must be quoted.
                var plainWouldChangeType = ConvertScalar(new YamlScalarNode(text)) is not JsonValue v || !v.TryGetValue<string>(out _);
                // Lines of a file (a config in a ConfigMap) read best as a literal block, as kubectl users write them.
                var lines = text.Contains('\n', StringComparison.Ordinal) && !text.Contains(" \n", StringComparison.Ordinal) && !text.Contains('\t', StringComparison.Ordinal);
                return new YamlScalarNode(text) { Style = lines ? ScalarStyle.Literal : plainWouldChangeType ? ScalarStyle.DoubleQuoted : ScalarStyle.Any };
            case JsonValue value when value.TryGetValue<bool>(out var flag):
                return new YamlScalarNode(flag ? "true" : "false") { Style = ScalarStyle.Plain };
            default:
                return new YamlScalarNode(node.ToJsonString()) { Style = ScalarStyle.Plain };
        }
    }

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex IntegerPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();
}

/// <summary>A manifest that cannot be read; the message says where and why.</summary>
internal sealed class ManifestException(string message, Exception? inner = null) : Exception(message, inner);
