using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace MemoryCluster.Operator.Planning;

/// <summary>
/// Whether an observed object already is what the operator would apply, so that a resync with nothing changed
/// writes nothing. Two tests, both needed: the observed object carries the hash of the desired rendering (so a
/// field the operator stopped setting, which server-side apply would remove, counts as a change), and every field
/// the operator sets has that value in the observed object (so a change someone else made is put back).
/// </summary>
public static class ObjectDiff
{
    /// <summary>The annotation with the hash of the rendering last applied.</summary>
    public const string HashAnnotation = "memorycluster.io/applied-hash";

    /// <summary>A short, stable hash of <paramref name="desired"/> as it is serialised (the annotation excluded).</summary>
    public static string Hash(IKubernetesObject<V1ObjectMeta> desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        return HashOf(ToJson(desired));
    }

    /// <summary><paramref name="desired"/> with its hash annotation set (a copy of its metadata; the object itself is shared).</summary>
    public static T WithHash<T>(T desired)
        where T : IKubernetesObject<V1ObjectMeta>
    {
        Prepare(desired);
        return desired;
    }

    /// <summary>
    /// Sets the hash annotation on <paramref name="desired"/> and returns the object as JSON with it, from one
    /// serialisation (what <see cref="Satisfied"/> compares).
    /// </summary>
    public static JsonObject Prepare(IKubernetesObject<V1ObjectMeta> desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var json = ToJson(desired);
        var hash = HashOf(json);
        desired.Metadata.Annotations = new Dictionary<string, string>(desired.Metadata.Annotations ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [HashAnnotation] = hash,
        };
        var metadata = json["metadata"] as JsonObject ?? [];
        json["metadata"] = metadata;
        var annotations = metadata["annotations"] as JsonObject ?? [];
        metadata["annotations"] = annotations;
        annotations[HashAnnotation] = hash;
        return json;
    }

    /// <summary>The hash of an object's JSON without the hash annotation (<paramref name="node"/> is left as it was).</summary>
    private static string HashOf(JsonObject node)
    {
        var copy = node.DeepClone().AsObject();
        if (copy["metadata"] is JsonObject metadata && metadata["annotations"] is JsonObject annotations)
        {
            annotations.Remove(HashAnnotation);
            if (annotations.Count == 0)
            {
                metadata.Remove("annotations");
            }
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(copy.ToJsonString())).AsSpan(0, 8));
    }

    /// <summary>
    /// True when <paramref name="observed"/> needs no apply to become <paramref name="desired"/> (which carries its
    /// hash annotation).
    /// </summary>
    public static bool Satisfied(JsonObject? observed, JsonObject desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        if (observed is null)
        {
            return false;
        }

        var wanted = (string?)desired["metadata"]?["annotations"]?[HashAnnotation];
        var has = (string?)observed["metadata"]?["annotations"]?[HashAnnotation];
        return wanted == has && Contains(observed, desired);
    }

    /// <summary>
    /// Every field of <paramref name="desired"/> is in <paramref name="observed"/> with the same value; fields only
    /// the observed object has (defaults, status, other managers' fields) do not matter. Lists must have the same
    /// length and match item by item.
    /// </summary>
    public static bool Contains(JsonNode? observed, JsonNode? desired)
    {
        switch (desired)
        {
            case null:
                return true;
            case JsonObject d:
                if (observed is not JsonObject o)
                {
                    return false;
                }

                foreach (var (name, value) in d)
                {
                    if (value is null)
                    {
                        continue;
                    }

                    if (!o.TryGetPropertyValue(name, out var other) || !Contains(other, value))
                    {
                        return false;
                    }
                }

                return true;
            case JsonArray d:
                if (observed is not JsonArray a || a.Count != d.Count)
                {
                    return false;
                }

                for (var i = 0; i < d.Count; i++)
                {
                    if (!Contains(a[i], d[i]))
                    {
                        return false;
                    }
                }

                return true;
            default:
                return observed is JsonValue && SameValue(observed.AsValue(), desired.AsValue());
        }
    }

    private static bool SameValue(JsonValue observed, JsonValue desired)
    {
        if (JsonNode.DeepEquals(observed, desired))
        {
            return true;
        }

        // 1 and 1.0 are the same number, whichever way a server wrote it.
        return observed.TryGetValue<double>(out var a) && desired.TryGetValue<double>(out var b) && a == b;
    }

    /// <summary>The object as the API sees it (KubernetesClient's JSON settings).</summary>
    public static JsonObject ToJson(object obj) => JsonNode.Parse(KubernetesJson.Serialize(obj))!.AsObject();
}
