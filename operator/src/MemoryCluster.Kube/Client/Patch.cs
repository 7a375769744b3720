using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.Client;

/// <summary>A PATCH body and its content type. Strategic merge patch is left out: it does not work on custom resources.</summary>
public abstract record Patch(string ContentType)
{
    public abstract string Body { get; }
}

/// <summary>RFC 7386 merge patch: objects merge, arrays are replaced whole, null deletes.</summary>
public sealed record MergePatch(JsonNode Document) : Patch("application/merge-patch+json")
{
    public override string Body => Document.ToJsonString();
}

/// <summary>RFC 6902 JSON patch; a <c>test</c> operation makes the change conditional.</summary>
public sealed record JsonPatch(IReadOnlyList<JsonPatchOperation> Operations) : Patch("application/json-patch+json")
{
    public override string Body
    {
        get
        {
            var array = new JsonArray();
            foreach (var op in Operations)
            {
                var item = new JsonObject { ["op"] = op.Op, ["path"] = op.Path };
                if (op.From is not null)
                {
                    item["from"] = op.From;
                }

                if (op.Op is "add" or "replace" or "test")
                {
                    item["value"] = op.Value?.DeepClone();
                }

                array.Add(item);
            }

            return array.ToJsonString();
        }
    }
}

/// <summary>One operation of a JSON patch.</summary>
public sealed record JsonPatchOperation(string Op, string Path, JsonNode? Value = null, string? From = null)
{
    public static JsonPatchOperation Test(string path, JsonNode? value) => new("test", path, value);

    public static JsonPatchOperation Add(string path, JsonNode? value) => new("add", path, value);

    public static JsonPatchOperation Replace(string path, JsonNode? value) => new("replace", path, value);

    public static JsonPatchOperation Remove(string path) => new("remove", path);

    /// <summary>Escapes a key for use in a JSON pointer (<c>~</c> → <c>~0</c>, <c>/</c> → <c>~1</c>).</summary>
    public static string Escape(string key) => key.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);
}

/// <summary>What a server-side apply returned: the object, and whether it was created (201) or updated (200).</summary>
public sealed record ApplyResult<T>(T Object, bool Created);
