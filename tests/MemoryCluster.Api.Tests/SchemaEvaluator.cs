using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace MemoryCluster.Api.Tests;

/// <summary>
/// Evaluates the OpenAPI keywords of the generated schema that need no CEL (type, enum, minimum, maximum,
/// minLength, maxLength, pattern, maxProperties, maxItems, required, and fields the schema does not declare),
/// as the API server does before CEL.
/// Test-only: it lets a validation case state what the API server would say and have that checked.
/// </summary>
internal static class SchemaEvaluator
{
    /// <summary>Every violation, as "path: keyword".</summary>
    public static IReadOnlyList<string> Violations(JsonObject schema, JsonNode? value)
    {
        var violations = new List<string>();
        Walk(schema, value, string.Empty, violations);
        return violations;
    }

    private static void Walk(JsonObject schema, JsonNode? value, string path, List<string> violations)
    {
        if (value is null)
        {
            return;
        }

        var type = schema["type"]?.GetValue<string>();
        if (schema["x-kubernetes-int-or-string"]?.GetValue<bool>() == true)
        {
            if (value is JsonValue v && v.TryGetValue<string>(out var text) && schema["pattern"] is { } p && !Regex.IsMatch(text, p.GetValue<string>()))
            {
                violations.Add($"{path}: pattern");
            }

            return;
        }

        switch (type)
        {
            case "object" when value is JsonObject obj:
                if (schema["maxProperties"] is { } maxProperties && obj.Count > maxProperties.GetValue<int>())
                {
                    violations.Add($"{path}: maxProperties");
                }

                foreach (var required in schema["required"]?.AsArray() ?? [])
                {
                    if (!obj.ContainsKey(required!.GetValue<string>()))
                    {
                        violations.Add($"{Join(path, required.GetValue<string>())}: required");
                    }
                }

                foreach (var (key, child) in obj)
                {
                    if (schema["properties"]?[key] is JsonObject property)
                    {
                        Walk(property, child, Join(path, key), violations);
                    }
                    else if (schema["additionalProperties"] is JsonObject additional)
                    {
                        Walk(additional, child, $"{path}[{key}]", violations);
                    }
                    else if (schema["properties"] is not null && schema["x-kubernetes-preserve-unknown-fields"] is null)
                    {
                        // Strict field validation (kubectl's default) refuses a field the schema does not declare.
                        violations.Add($"{Join(path, key)}: unknown field");
                    }
                }

                return;
            case "array" when value is JsonArray array:
                if (schema["maxItems"] is { } maxItems && array.Count > maxItems.GetValue<int>())
                {
                    violations.Add($"{path}: maxItems");
                }

                for (var i = 0; i < array.Count; i++)
                {
                    Walk((JsonObject)schema["items"]!, array[i], $"{path}[{i}]", violations);
                }

                return;
            case "string" when value is JsonValue v && v.TryGetValue<string>(out var s):
                if (schema["enum"] is JsonArray allowed && !allowed.Any(a => a!.GetValue<string>() == s))
                {
                    violations.Add($"{path}: enum");
                }

                if (schema["minLength"] is { } minLength && s.Length < minLength.GetValue<long>())
                {
                    violations.Add($"{path}: minLength");
                }

                if (schema["maxLength"] is { } maxLength && s.Length > maxLength.GetValue<long>())
                {
                    violations.Add($"{path}: maxLength");
                }

                if (schema["pattern"] is { } pattern && !Regex.IsMatch(s, pattern.GetValue<string>()))
                {
                    violations.Add($"{path}: pattern");
                }

                return;
            case "integer" when value is JsonValue v && v.TryGetValue<long>(out var n):
                if (schema["minimum"] is { } minimum && n < minimum.GetValue<long>())
                {
                    violations.Add($"{path}: minimum");
                }

                if (schema["maximum"] is { } maximum && n > maximum.GetValue<long>())
                {
                    violations.Add($"{path}: maximum");
                }

                return;
            case "boolean" when value is JsonValue v && v.TryGetValue<bool>(out _):
                return;
            default:
                violations.Add($"{path}: type");
                return;
        }
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
}
