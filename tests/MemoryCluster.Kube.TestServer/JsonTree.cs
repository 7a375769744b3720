using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>RFC 7386 merge patch, RFC 6902 JSON patch, and the leaf paths server-side apply tracks.</summary>
internal static class JsonTree
{
    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        var result = target is JsonObject t ? (JsonObject)t.DeepClone() : new JsonObject();
        foreach (var (key, value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(key);
            }
            else
            {
                var merged = MergePatch(result[key], value);
                result[key] = merged;
            }
        }

        return result;
    }

    public static JsonNode? JsonPatch(JsonNode? document, JsonArray operations)
    {
        var root = new JsonObject { ["r"] = document?.DeepClone() };
        foreach (var item in operations)
        {
            if (item is not JsonObject op)
            {
                throw ApiError.BadRequest("a JSON patch operation must be an object");
            }

            var kind = (string?)op["op"] ?? throw ApiError.BadRequest("JSON patch operation without op");
            var path = (string?)op["path"] ?? throw ApiError.BadRequest("JSON patch operation without path");
            switch (kind)
            {
                case "add":
                    Add(root, path, op["value"]?.DeepClone());
                    break;
                case "remove":
                    Remove(root, path);
                    break;
                case "replace":
                    Remove(root, path);
                    Add(root, path, op["value"]?.DeepClone());
                    break;
                case "move":
                    var moved = Get(root, (string?)op["from"] ?? throw ApiError.BadRequest("move without from"))?.DeepClone();
                    Remove(root, (string)op["from"]!);
                    Add(root, path, moved);
                    break;
                case "copy":
                    Add(root, path, Get(root, (string?)op["from"] ?? throw ApiError.BadRequest("copy without from"))?.DeepClone());
                    break;
                case "test":
                    var actual = Get(root, path);
                    if (!JsonNode.DeepEquals(actual, op["value"]))
                    {
                        throw new ApiError(422, "Invalid", $"the JSON patch test of {path} failed: value is {actual?.ToJsonString() ?? "null"}");
                    }

                    break;
                default:
                    throw ApiError.BadRequest($"unknown JSON patch operation '{kind}'");
            }
        }

        return root["r"];
    }

    private static List<string> Tokens(string path)
    {
        if (path.Length == 0)
        {
            return ["r"];
        }

        if (path[0] != '/')
        {
            throw ApiError.BadRequest($"JSON pointer '{path}' must start with /");
        }

        var tokens = new List<string> { "r" };
        foreach (var t in path[1..].Split('/'))
        {
            tokens.Add(t.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal));
        }

        return tokens;
    }

    private static JsonNode? Get(JsonObject root, string path)
    {
        JsonNode? node = root;
        foreach (var token in Tokens(path))
        {
            node = node switch
            {
                JsonObject o when o.TryGetPropertyValue(token, out var v) => v,
                JsonArray a when int.TryParse(token, out var i) && i >= 0 && i < a.Count => a[i],
                _ => throw new ApiError(422, "Invalid", $"JSON pointer {path} does not exist"),
            };
        }

        return node;
    }

    private static (JsonNode Parent, string Last) Parent(JsonObject root, string path)
    {
        var tokens = Tokens(path);
        JsonNode? node = root;
        for (var i = 0; i < tokens.Count - 1; i++)
        {
            node = node switch
            {
                JsonObject o when o.TryGetPropertyValue(tokens[i], out var v) && v is not null => v,
                JsonArray a when int.TryParse(tokens[i], out var index) && index >= 0 && index < a.Count && a[index] is not null => a[index],
                _ => throw new ApiError(422, "Invalid", $"the parent of JSON pointer {path} does not exist"),
            };
        }

        return (node!, tokens[^1]);
    }

    private static void Add(JsonObject root, string path, JsonNode? value)
    {
        var (parent, last) = Parent(root, path);
        switch (parent)
        {
            case JsonObject o:
                o[last] = value;
                break;
            case JsonArray a when last == "-":
                a.Add(value);
                break;
            case JsonArray a when int.TryParse(last, out var i) && i >= 0 && i <= a.Count:
                a.Insert(i, value);
                break;
            default:
                throw new ApiError(422, "Invalid", $"cannot add at {path}");
        }
    }

    private static void Remove(JsonObject root, string path)
    {
        var (parent, last) = Parent(root, path);
        switch (parent)
        {
            case JsonObject o when o.ContainsKey(last):
                o.Remove(last);
                break;
            case JsonArray a when int.TryParse(last, out var i) && i >= 0 && i < a.Count:
                a.RemoveAt(i);
                break;
            default:
                throw new ApiError(422, "Invalid", $"cannot remove {path}: it does not exist");
        }
    }

    /// <summary>Leaf paths (objects recursed; scalars, arrays and empty objects are leaves) with their values.</summary>
    public static Dictionary<string, JsonNode?> Leaves(JsonObject obj)
    {
        var result = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        Collect(obj, "", result, top: true);
        return result;
    }

    private static void Collect(JsonObject obj, string prefix, Dictionary<string, JsonNode?> into, bool top)
    {
        foreach (var (key, value) in obj)
        {
            if (top && key is "apiVersion" or "kind")
            {
                continue;
            }

            var path = prefix + "/" + key.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);
            if (top && key == "metadata" && value is JsonObject meta)
            {
                foreach (var field in new[] { "labels", "annotations", "finalizers", "ownerReferences" })
                {
                    if (meta[field] is JsonObject m && m.Count > 0)
                    {
                        Collect(m, path + "/" + field, into, top: false);
                    }
                    else if (meta[field] is { } n)
                    {
                        into[path + "/" + field] = n;
                    }
                }

                continue;
            }

            if (value is JsonObject child && child.Count > 0)
            {
                Collect(child, path, into, top: false);
            }
            else
            {
                into[path] = value;
            }
        }
    }

    /// <summary>The node at a leaf path, or null when absent.</summary>
    public static JsonNode? At(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var token in Tokens(path).Skip(1))
        {
            if (node is not JsonObject o || !o.TryGetPropertyValue(token, out node))
            {
                return null;
            }
        }

        return node;
    }

    public static bool Has(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var token in Tokens(path).Skip(1))
        {
            if (node is not JsonObject o || !o.TryGetPropertyValue(token, out node))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Removes the leaf at <paramref name="path"/> and any object it leaves empty.</summary>
    public static void RemoveLeaf(JsonObject obj, string path)
    {
        var tokens = Tokens(path).Skip(1).ToList();
        var chain = new List<JsonObject> { obj };
        for (var i = 0; i < tokens.Count - 1; i++)
        {
            if (chain[^1][tokens[i]] is not JsonObject next)
            {
                return;
            }

            chain.Add(next);
        }

        chain[^1].Remove(tokens[^1]);
        for (var i = chain.Count - 1; i > 0; i--)
        {
            if (chain[i].Count == 0)
            {
                chain[i - 1].Remove(tokens[i - 1]);
            }
        }
    }

    /// <summary>Deep merge for apply: objects merge, everything else is replaced.</summary>
    public static void MergeInto(JsonObject target, JsonObject source)
    {
        foreach (var (key, value) in source)
        {
            if (value is JsonObject s && target[key] is JsonObject t)
            {
                MergeInto(t, s);
            }
            else
            {
                target[key] = value?.DeepClone();
            }
        }
    }

    /// <summary>The FieldsV1 form (<c>{"f:spec":{"f:instances":{}}}</c>) of a set of leaf paths.</summary>
    public static JsonObject FieldsV1(IEnumerable<string> paths)
    {
        var root = new JsonObject();
        foreach (var path in paths.Order(StringComparer.Ordinal))
        {
            var node = root;
            foreach (var token in Tokens(path).Skip(1))
            {
                var key = "f:" + token;
                if (node[key] is not JsonObject next)
                {
                    next = new JsonObject();
                    node[key] = next;
                }

                node = next;
            }
        }

        return root;
    }
}
