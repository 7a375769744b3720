using System.Text;
using System.Text.Json.Nodes;

namespace MemoryCluster.Cli.Manifests;

/// <summary>
/// The field table of docs/api.md, generated from the CRD schema so the reference cannot drift from the
/// types. Only the text between the two markers is generated; the prose around it is written by hand.
/// </summary>
internal static class ApiReference
{
    public const string RelativePath = "docs/api.md";
    public const string Begin = "<!-- BEGIN GENERATED FIELDS: `make crds` rewrites this part from the C# types -->";
    public const string End = "<!-- END GENERATED FIELDS -->";

    /// <summary>Returns <paramref name="document"/> with the generated part replaced by the table for <paramref name="crd"/>.</summary>
    public static string Update(string document, JsonObject crd)
    {
        var begin = document.IndexOf(Begin, StringComparison.Ordinal);
        var end = document.IndexOf(End, StringComparison.Ordinal);
        if (begin < 0 || end < begin)
        {
            throw new InvalidOperationException($"{RelativePath} must hold the markers '{Begin}' and '{End}', in that order");
        }

        return document[..(begin + Begin.Length)] + "\n\n" + Table(crd) + "\n" + document[end..];
    }

    /// <summary>One row per field of spec and status: path, type, default, constraints, description.</summary>
    public static string Table(JsonObject crd)
    {
        var schema = (JsonObject)crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!;
        var text = new StringBuilder();
        foreach (var section in new[] { "spec", "status" })
        {
            text.Append("### ").Append(section).Append("\n\n");
            text.Append("| field | type | default | rules | description |\n| --- | --- | --- | --- | --- |\n");
            Rows((JsonObject)schema["properties"]![section]!, section, text);
            text.Append('\n');
        }

        return text.ToString();
    }

    private static void Rows(JsonObject node, string path, StringBuilder text)
    {
        foreach (var (name, child) in node["properties"]?.AsObject() ?? [])
        {
            var field = (JsonObject)child!;
            var fieldPath = $"{path}.{name}";
            text.Append("| `").Append(fieldPath).Append("` | ")
                .Append(TypeOf(field)).Append(" | ")
                .Append(DefaultOf(field)).Append(" | ")
                .Append(Escape(RulesOf(field))).Append(" | ")
                .Append(Escape(field["description"]?.GetValue<string>() ?? string.Empty)).Append(" |\n");
            if (field["type"]?.GetValue<string>() == "object" && field.ContainsKey("properties"))
            {
                Rows(field, fieldPath, text);
            }
            else if (field["items"] is JsonObject items && items.ContainsKey("properties"))
            {
                Rows(items, fieldPath + "[]", text);
            }
        }
    }

    private static string TypeOf(JsonObject field)
    {
        if (field["x-kubernetes-int-or-string"] is not null)
        {
            return "quantity";
        }

        return field["type"]!.GetValue<string>() switch
        {
            "object" when field["additionalProperties"] is JsonObject values => $"map of {TypeOf(values)}",
            "array" when field["items"] is JsonObject items => $"list of {(items.ContainsKey("properties") ? "object" : TypeOf(items))}",
            var t => t,
        };
    }

    private static string DefaultOf(JsonObject field) => field["default"] switch
    {
        null => string.Empty,
        JsonObject => string.Empty,
        var d => $"`{d.ToJsonString().Trim('"')}`",
    };

    private static string RulesOf(JsonObject field)
    {
        var rules = new List<string>();
        if (field["enum"] is JsonArray values)
        {
            rules.Add("one of " + string.Join(", ", values.Select(v => v!.GetValue<string>())));
        }

        if (field["minimum"] is { } min)
        {
            rules.Add($"{min}–{field["maximum"]}");
        }

        if (field["minLength"] is { } minLength)
        {
            rules.Add($"length {minLength}–{field["maxLength"]}");
        }

        if (field["maxProperties"] is { } maxProperties)
        {
            rules.Add($"at most {maxProperties} entries");
        }

        if (field["x-kubernetes-list-type"]?.GetValue<string>() == "map")
        {
            rules.Add("keyed by " + string.Join(", ", field["x-kubernetes-list-map-keys"]!.AsArray().Select(k => k!.GetValue<string>())));
        }

        foreach (var rule in field["x-kubernetes-validations"]?.AsArray() ?? [])
        {
            rules.Add(rule!["message"]!.GetValue<string>());
        }

        return string.Join("; ", rules);
    }

    private static string Escape(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);
}
