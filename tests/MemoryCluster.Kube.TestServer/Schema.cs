using System.Text.Json;
using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>Structural-schema defaulting, as the API server applies <c>default:</c> on writes.</summary>
internal static class Defaults
{
    public static void Apply(JsonObject? schema, JsonNode? node)
    {
        if (schema is null)
        {
            return;
        }

        if (node is JsonObject obj && schema["properties"] is JsonObject properties)
        {
            foreach (var (name, propertySchema) in properties)
            {
                if (name == "metadata" || propertySchema is not JsonObject ps)
                {
                    continue;
                }

                if (!obj.ContainsKey(name) && ps["default"] is { } value)
                {
                    obj[name] = value.DeepClone();
                }

                if (obj[name] is { } child)
                {
                    Apply(ps, child);
                }
            }
        }
        else if (node is JsonObject map && schema["additionalProperties"] is JsonObject valueSchema)
        {
            foreach (var (_, value) in map)
            {
                Apply(valueSchema, value);
            }
        }
        else if (node is JsonArray array && schema["items"] is JsonObject items)
        {
            foreach (var item in array)
            {
                Apply(items, item);
            }
        }
    }
}

/// <summary>
/// The OpenAPI checks of a structural schema (types, enums, bounds, lengths). CEL rules are not evaluated: the
/// double is not a CEL interpreter, and tests of CEL rules belong against a real API server.
/// </summary>
internal static class Validation
{
    public static void Validate(string kind, string name, JsonObject schema, JsonObject obj)
    {
        var causes = new JsonArray();
        Check(schema, obj, "", causes, top: true);
        if (causes.Count > 0)
        {
            var first = causes[0]!;
            throw new ApiError(422, "Invalid", $"{kind} \"{name}\" is invalid: {first["field"]}: {first["message"]}", causes,
                new JsonObject { ["name"] = name, ["kind"] = kind });
        }
    }

    private static void Check(JsonObject schema, JsonNode? node, string path, JsonArray causes, bool top)
    {
        if (node is null)
        {
            if ((bool?)schema["nullable"] != true && !top)
            {
                Add(causes, path, "Invalid value: \"null\": " + path.TrimStart('.') + " in body must be of type " + (string?)schema["type"]);
            }

            return;
        }

        var type = (string?)schema["type"];
        var kind = node.GetValueKind();
        var ok = type switch
        {
            "object" => kind == JsonValueKind.Object,
            "array" => kind == JsonValueKind.Array,
            "string" => kind == JsonValueKind.String || schema["x-kubernetes-int-or-string"] is not null,
            "integer" => kind == JsonValueKind.Number && node.GetValue<JsonElement>().TryGetInt64(out _)
                || (schema["x-kubernetes-int-or-string"] is not null && kind == JsonValueKind.String),
            "number" => kind == JsonValueKind.Number,
            "boolean" => kind is JsonValueKind.True or JsonValueKind.False,
            _ => true,
        };
        if (!ok && schema["x-kubernetes-int-or-string"] is not null)
        {
            ok = kind is JsonValueKind.String or JsonValueKind.Number;
        }

        if (!ok)
        {
            Add(causes, path, $"Invalid value: \"{Describe(kind)}\": {path.TrimStart('.')} in body must be of type {type}: \"{Describe(kind)}\"");
            return;
        }

        if (schema["enum"] is JsonArray values && !values.Any(v => JsonNode.DeepEquals(v, node)))
        {
            Add(causes, path, $"Unsupported value: {node.ToJsonString()}: supported values: {string.Join(", ", values.Select(v => v!.ToJsonString()))}");
        }

        if (kind == JsonValueKind.Number)
        {
            var number = node.GetValue<JsonElement>().GetDouble();
            if (schema["minimum"] is { } min && number < (double)min)
            {
                Add(causes, path, $"Invalid value: {node.ToJsonString()}: {path.TrimStart('.')} in body should be greater than or equal to {min.ToJsonString()}");
            }

            if (schema["maximum"] is { } max && number > (double)max)
            {
                Add(causes, path, $"Invalid value: {node.ToJsonString()}: {path.TrimStart('.')} in body should be less than or equal to {max.ToJsonString()}");
            }
        }

        if (kind == JsonValueKind.String && type == "string")
        {
            var text = (string)node!;
            if (schema["maxLength"] is { } maxLength && text.Length > (int)maxLength)
            {
                Add(causes, path, $"Too long: may not be more than {maxLength.ToJsonString()} bytes");
            }

            if (schema["minLength"] is { } minLength && text.Length < (int)minLength)
            {
                Add(causes, path, $"Invalid value: \"{text}\": {path.TrimStart('.')} in body should be at least {minLength.ToJsonString()} chars long");
            }
        }

        if (node is JsonObject obj)
        {
            if (schema["properties"] is JsonObject properties)
            {
                foreach (var (name, value) in obj)
                {
                    if (top && name is "metadata" or "apiVersion" or "kind")
                    {
                        continue;
                    }

                    if (properties[name] is JsonObject ps)
                    {
                        Check(ps, value, path + "." + name, causes, top: false);
                    }
                }

                foreach (var required in schema["required"] as JsonArray ?? [])
                {
                    if (!obj.ContainsKey((string)required!))
                    {
                        Add(causes, path + "." + (string)required!, "Required value");
                    }
                }
            }
            else if (schema["additionalProperties"] is JsonObject valueSchema)
            {
                foreach (var (name, value) in obj)
                {
                    Check(valueSchema, value, path + "." + name, causes, top: false);
                }
            }
        }
        else if (node is JsonArray array && schema["items"] is JsonObject items)
        {
            for (var i = 0; i < array.Count; i++)
            {
                Check(items, array[i], path + "[" + i + "]", causes, top: false);
            }
        }
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "null",
    };

    private static void Add(JsonArray causes, string path, string message) =>
        causes.Add(new JsonObject { ["reason"] = "FieldValueInvalid", ["message"] = message, ["field"] = path.TrimStart('.') });
}

/// <summary>
/// Structural-schema pruning, as the API server does it for custom resources on every write: a field the schema
/// does not declare is dropped, unless its object is marked <c>x-kubernetes-preserve-unknown-fields: true</c>
/// (then the unknown fields stay, and the declared ones are still pruned by their own schemas). At the top only
/// apiVersion, kind and the fields of ObjectMeta survive in metadata.
/// </summary>
internal static class Pruning
{
    private static readonly HashSet<string> ObjectMetaFields =
    [
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
        "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers", "managedFields",
    ];

    /// <summary>Prunes <paramref name="obj"/> in place; returns the paths dropped (e.g. <c>spec.foo</c>).</summary>
    public static List<string> Prune(JsonObject? schema, JsonObject obj)
    {
        var dropped = new List<string>();
        if (schema is null)
        {
            return dropped;
        }

        if (obj["metadata"] is JsonObject meta)
        {
            foreach (var key in meta.Select(p => p.Key).Where(k => !ObjectMetaFields.Contains(k)).ToList())
            {
                meta.Remove(key);
                dropped.Add("metadata." + key);
            }
        }

        PruneNode(schema, obj, "", dropped, top: true);
        return dropped;
    }

    /// <summary>Prunes one value (e.g. the status a status write sends) by the schema of its field.</summary>
    public static List<string> PruneField(JsonObject? schema, string field, JsonNode? value)
    {
        var dropped = new List<string>();
        if (schema?["properties"]?[field] is JsonObject fieldSchema)
        {
            PruneNode(fieldSchema, value, field, dropped, top: false);
        }

        return dropped;
    }

    private static void PruneNode(JsonObject schema, JsonNode? node, string path, List<string> dropped, bool top)
    {
        var preserve = (bool?)schema["x-kubernetes-preserve-unknown-fields"] == true;
        switch (node)
        {
            case JsonObject obj when schema["properties"] is JsonObject properties:
                foreach (var key in obj.Select(p => p.Key).ToList())
                {
                    if (top && key is "apiVersion" or "kind" or "metadata")
                    {
                        continue;
                    }

                    if (properties[key] is JsonObject child)
                    {
                        PruneNode(child, obj[key], Join(path, key), dropped, top: false);
                    }
                    else if (!preserve)
                    {
                        obj.Remove(key);
                        dropped.Add(Join(path, key));
                    }
                }

                break;
            case JsonObject map when schema["additionalProperties"] is JsonObject values:
                foreach (var (key, value) in map)
                {
                    PruneNode(values, value, Join(path, key), dropped, top: false);
                }

                break;
            case JsonObject empty when !preserve && schema["x-kubernetes-int-or-string"] is null && !top:
                // An object schema that declares no fields keeps none.
                foreach (var key in empty.Select(p => p.Key).ToList())
                {
                    empty.Remove(key);
                    dropped.Add(Join(path, key));
                }

                break;
            case JsonArray array when schema["items"] is JsonObject items:
                for (var i = 0; i < array.Count; i++)
                {
                    PruneNode(items, array[i], path + "[" + i + "]", dropped, top: false);
                }

                break;
        }
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;
}
