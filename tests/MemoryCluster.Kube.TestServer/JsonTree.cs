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

    /// <summary>
    /// The field paths server-side apply tracks, with their values: a JSON pointer per leaf (scalars, atomic lists,
    /// empty objects). Entries of map and set lists (<paramref name="types"/>) are tracked one by one, as SSA's
    /// FieldsV1 does: the entry itself under <c>k:{"name":"a"}</c> (map) or <c>v:"x"</c> (set), then its fields.
    /// </summary>
    public static Dictionary<string, JsonNode?> Leaves(JsonObject obj, ListTypes types)
    {
        var result = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        Collect(obj, "", "", types, result, top: true);
        return result;
    }

    private static void Collect(JsonObject obj, string prefix, string fieldPath, ListTypes types, Dictionary<string, JsonNode?> into, bool top)
    {
        foreach (var (key, value) in obj)
        {
            if (top && key is "apiVersion" or "kind")
            {
                continue;
            }

            var path = prefix + "/" + Escape(key);
            if (top && key == "metadata" && value is JsonObject meta)
            {
                foreach (var field in new[] { "labels", "annotations", "finalizers", "ownerReferences" })
                {
                    if (meta[field] is { } m)
                    {
                        CollectValue(m, path + "/" + field, ListTypes.Child("metadata", field), types, into);
                    }
                }

                continue;
            }

            CollectValue(value, path, ListTypes.Child(fieldPath, key), types, into);
        }
    }

    private static void CollectValue(JsonNode? value, string path, string fieldPath, ListTypes types, Dictionary<string, JsonNode?> into)
    {
        if (value is JsonObject child && child.Count > 0)
        {
            Collect(child, path, fieldPath, types, into, top: false);
            return;
        }

        var type = types.Of(fieldPath);
        if (value is JsonArray list && list.Count > 0 && type.Kind != ListKind.Atomic && list.All(e => EntryToken(e, type) is not null))
        {
            foreach (var entry in list)
            {
                var entryPath = path + "/" + Escape(EntryToken(entry, type)!);
                into[entryPath] = type.Kind == ListKind.Map ? KeyOf((JsonObject)entry!, type) : entry?.DeepClone();
                if (type.Kind == ListKind.Map)
                {
                    Collect((JsonObject)entry!, entryPath, ListTypes.Entry(fieldPath), types, into, top: false);
                }
            }

            return;
        }

        into[path] = value;
    }

    /// <summary>
    /// The token naming an entry of a map or set list (<c>k:{"name":"a"}</c>, <c>v:"x"</c>), or null when the entry
    /// cannot be named (a map entry that is not an object or lacks every key).
    /// </summary>
    private static string? EntryToken(JsonNode? entry, ListType type) => type.Kind switch
    {
        ListKind.Map when entry is JsonObject o && type.Keys.Any(o.ContainsKey) => "k:" + KeyOf(o, type).ToJsonString(),
        ListKind.Set when entry is JsonValue => "v:" + entry.ToJsonString(),
        _ => null,
    };

    private static JsonObject KeyOf(JsonObject entry, ListType type)
    {
        var key = new JsonObject();
        foreach (var name in type.Keys.Order(StringComparer.Ordinal))
        {
            if (entry[name] is { } value)
            {
                key[name] = value.DeepClone();
            }
        }

        return key;
    }

    private static bool IsEntryToken(string token) => token.StartsWith("k:{", StringComparison.Ordinal) || token.StartsWith("v:", StringComparison.Ordinal);

    /// <summary>Whether a path names a whole entry of a map or set list.</summary>
    public static bool IsEntry(string path) => IsEntryToken(Tokens(path)[^1]);

    private static bool Matches(JsonNode? entry, string token)
    {
        if (token.StartsWith("v:", StringComparison.Ordinal))
        {
            return JsonNode.DeepEquals(entry, JsonNode.Parse(token[2..]));
        }

        if (entry is not JsonObject o || JsonNode.Parse(token[2..]) is not JsonObject key)
        {
            return false;
        }

        // A key field the entry lacks must be absent from the key too.
        return key.All(k => JsonNode.DeepEquals(o[k.Key], k.Value));
    }

    private static string Escape(string token) => token.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    /// <summary>The child of an object (a field) or of a list (the entry a token names).</summary>
    private static JsonNode? Step(JsonNode? node, string token, out bool found)
    {
        switch (node)
        {
            case JsonObject o when o.TryGetPropertyValue(token, out var value):
                found = true;
                return value;
            case JsonArray a when IsEntryToken(token):
                var entry = a.FirstOrDefault(e => Matches(e, token));
                found = entry is not null;
                return entry;
            default:
                found = false;
                return null;
        }
    }

    /// <summary>The node at a path, or null when absent.</summary>
    public static JsonNode? At(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var token in Tokens(path).Skip(1))
        {
            node = Step(node, token, out var found);
            if (!found)
            {
                return null;
            }
        }

        return node;
    }

    /// <summary>
    /// Removes the field or list entry at <paramref name="path"/>, then the objects and lists it leaves empty up to
    /// the nearest list entry (an entry is removed only by its own path).
    /// </summary>
    public static void RemoveLeaf(JsonObject obj, string path)
    {
        var tokens = Tokens(path).Skip(1).ToList();
        var chain = new List<JsonNode> { obj };
        for (var i = 0; i < tokens.Count - 1; i++)
        {
            if (Step(chain[^1], tokens[i], out var found) is not { } next || !found)
            {
                return;
            }

            chain.Add(next);
        }

        Detach(chain[^1], tokens[^1]);
        for (var i = chain.Count - 1; i > 0; i--)
        {
            var empty = chain[i] is JsonObject { Count: 0 } || chain[i] is JsonArray { Count: 0 };
            if (!empty || chain[i - 1] is JsonArray)
            {
                return;
            }

            Detach(chain[i - 1], tokens[i - 1]);
        }
    }

    private static void Detach(JsonNode parent, string token)
    {
        switch (parent)
        {
            case JsonObject o:
                o.Remove(token);
                break;
            case JsonArray a when IsEntryToken(token):
                for (var i = 0; i < a.Count; i++)
                {
                    if (Matches(a[i], token))
                    {
                        a.RemoveAt(i);
                        return;
                    }
                }

                break;
        }
    }

    /// <summary>
    /// Deep merge for apply: objects merge; map lists merge entry by entry (by key), set lists by value; every other
    /// value, atomic lists included, is replaced.
    /// </summary>
    public static void MergeInto(JsonObject target, JsonObject source, ListTypes types) => MergeInto(target, source, "", types);

    private static void MergeInto(JsonObject target, JsonObject source, string fieldPath, ListTypes types)
    {
        foreach (var (key, value) in source)
        {
            var childPath = ListTypes.Child(fieldPath, key);
            var type = types.Of(childPath);
            if (value is JsonObject s && target[key] is JsonObject t)
            {
                MergeInto(t, s, childPath, types);
            }
            else if (value is JsonArray from && target[key] is JsonArray into && type.Kind != ListKind.Atomic
                && from.All(e => EntryToken(e, type) is not null) && into.All(e => EntryToken(e, type) is not null))
            {
                foreach (var entry in from)
                {
                    var token = EntryToken(entry, type)!;
                    var existing = into.FirstOrDefault(e => Matches(e, token));
                    if (existing is null)
                    {
                        into.Add(entry?.DeepClone());
                    }
                    else if (existing is JsonObject eo && entry is JsonObject no)
                    {
                        MergeInto(eo, no, ListTypes.Entry(childPath), types);
                    }
                }
            }
            else
            {
                target[key] = value?.DeepClone();
            }
        }
    }

    /// <summary>The FieldsV1 form (<c>{"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{".":{},"f:image":{}}}}}</c>) of a set of paths.</summary>
    public static JsonObject FieldsV1(IEnumerable<string> paths)
    {
        var root = new JsonObject();
        foreach (var path in paths.Order(StringComparer.Ordinal))
        {
            var node = root;
            var tokens = Tokens(path).Skip(1).ToList();
            foreach (var token in tokens)
            {
                var key = IsEntryToken(token) ? token : "f:" + token;
                if (node[key] is not JsonObject next)
                {
                    next = new JsonObject();
                    node[key] = next;
                }

                node = next;
            }

            if (tokens.Count > 0 && IsEntryToken(tokens[^1]))
            {
                node["."] = new JsonObject();
            }
        }

        return root;
    }
}
