using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>Label selectors (<c>a=b,c!=d,e in (x,y),f notin (z),g,!h</c>) and the field selectors on metadata.</summary>
internal sealed class Selector
{
    private readonly List<Func<Func<string, string?>, bool>> _requirements = [];

    public static Selector Everything { get; } = new();

    public bool Matches(Func<string, string?> lookup) => _requirements.TrueForAll(r => r(lookup));

    public static Selector ParseLabels(string? text)
    {
        var selector = new Selector();
        if (string.IsNullOrWhiteSpace(text))
        {
            return selector;
        }

        foreach (var raw in SplitTopLevel(text))
        {
            var part = raw.Trim();
            if (part.Length == 0)
            {
                continue;
            }

            var lower = part;
            int index;
            if ((index = lower.IndexOf(" notin ", StringComparison.Ordinal)) > 0)
            {
                var key = part[..index].Trim();
                var values = Values(part[(index + 7)..]);
                selector._requirements.Add(l => l(key) is not { } v || !values.Contains(v));
            }
            else if ((index = lower.IndexOf(" in ", StringComparison.Ordinal)) > 0)
            {
                var key = part[..index].Trim();
                var values = Values(part[(index + 4)..]);
                selector._requirements.Add(l => l(key) is { } v && values.Contains(v));
            }
            else if ((index = part.IndexOf("!=", StringComparison.Ordinal)) > 0)
            {
                var (key, value) = (part[..index].Trim(), part[(index + 2)..].Trim());
                selector._requirements.Add(l => l(key) != value);
            }
            else if ((index = part.IndexOf('=', StringComparison.Ordinal)) > 0)
            {
                var key = part[..index].Trim();
                var value = part[(index + 1)..].TrimStart('=').Trim();
                selector._requirements.Add(l => l(key) == value);
            }
            else if (part.StartsWith('!'))
            {
                var key = part[1..].Trim();
                selector._requirements.Add(l => l(key) is null);
            }
            else
            {
                selector._requirements.Add(l => l(part) is not null);
            }
        }

        return selector;
    }

    private static HashSet<string> Values(string text)
    {
        var trimmed = text.Trim();
        if (!trimmed.StartsWith('(') || !trimmed.EndsWith(')'))
        {
            throw ApiError.BadRequest($"unable to parse requirement: set values must be in parentheses: {text}");
        }

        return [.. trimmed[1..^1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
    }

    private static List<string> SplitTopLevel(string text)
    {
        var parts = new List<string>();
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            depth += text[i] switch { '(' => 1, ')' => -1, _ => 0 };
            if (text[i] == ',' && depth == 0)
            {
                parts.Add(text[start..i]);
                start = i + 1;
            }
        }

        parts.Add(text[start..]);
        return parts;
    }

    /// <summary>Labels of an object, as a lookup.</summary>
    public static Func<string, string?> LabelsOf(JsonObject obj) =>
        key => (string?)obj["metadata"]?["labels"]?[key];

    /// <summary>The fields every resource supports in field selectors.</summary>
    public static Func<string, string?> FieldsOf(JsonObject obj) => key => key switch
    {
        "metadata.name" => (string?)obj["metadata"]?["name"],
        "metadata.namespace" => (string?)obj["metadata"]?["namespace"] ?? "",
        _ => throw ApiError.BadRequest($"field label not supported: {key}"),
    };
}
