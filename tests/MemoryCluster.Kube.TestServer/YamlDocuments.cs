using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace MemoryCluster.Kube.TestServer;

/// <summary>Reads a YAML manifest as JSON (plain integers and booleans typed, quoted scalars strings), for test set-up.</summary>
public static class YamlDocuments
{
    public static JsonNode? FirstAsJson(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return ToJson(stream.Documents[0].RootNode);
    }

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode mapping => new JsonObject(mapping.Children.Select(c =>
            KeyValuePair.Create(((YamlScalarNode)c.Key).Value!, ToJson(c.Value)))),
        YamlSequenceNode sequence => new JsonArray([.. sequence.Children.Select(ToJson)]),
        YamlScalarNode { Style: not ScalarStyle.Plain } quoted => quoted.Value ?? "",
        YamlScalarNode scalar => Plain(scalar.Value ?? ""),
        _ => throw new InvalidOperationException("YAML aliases are not supported"),
    };

    private static JsonNode? Plain(string text)
    {
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number))
        {
            return number;
        }

        return text switch
        {
            "true" => true,
            "false" => false,
            "null" or "~" or "" => null,
            _ => text,
        };
    }
}
