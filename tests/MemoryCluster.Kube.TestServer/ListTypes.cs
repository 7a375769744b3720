using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>How server-side apply treats a list: replaced whole, merged per keyed entry, or merged as a set.</summary>
internal enum ListKind
{
    Unknown = 0,
    Atomic,
    Map,
    Set,
}

/// <summary>A list's kind and, for a map, the fields that identify an entry.</summary>
internal sealed record ListType(ListKind Kind, IReadOnlyList<string> Keys)
{
    public static ListType Atomic { get; } = new(ListKind.Atomic, []);
}

/// <summary>
/// The list types of one resource, by field path (<c>spec.template.spec.containers[].env</c>: field names joined by
/// dots, <c>[]</c> for "an entry of the list"). A CRD's come from
/// <c>x-kubernetes-list-type</c> / <c>x-kubernetes-list-map-keys</c> in its schema; built-in kinds carry the
/// <c>+listType</c> markers of the Kubernetes types our operator applies. Lists not named are atomic, as in Kubernetes.
/// </summary>
internal sealed class ListTypes
{
    private static readonly ConditionalWeakTable<ResourceInfo, ListTypes> Cache = [];

    private readonly Dictionary<string, ListType> _types;

    private ListTypes(Dictionary<string, ListType> types) => _types = types;

    public static ListTypes For(ResourceInfo resource) => Cache.GetValue(resource, Build);

    /// <summary>The list types of a schema alone (tests and CRD resources).</summary>
    public static ListTypes FromSchema(JsonObject? schema)
    {
        var types = Common();
        if (schema is not null)
        {
            Walk(schema, "", types);
        }

        return new ListTypes(types);
    }

    public ListType Of(string path) => _types.TryGetValue(path, out var type) ? type : ListType.Atomic;

    public static string Child(string path, string field) => path.Length == 0 ? field : path + "." + field;

    public static string Entry(string path) => path + "[]";

    private static ListTypes Build(ResourceInfo resource)
    {
        if (resource.Schema is not null)
        {
            return FromSchema(resource.Schema);
        }

        var types = Common();
        foreach (var podSpec in resource.Kind switch
        {
            "Pod" => ["spec"],
            "StatefulSet" or "Deployment" => new[] { "spec.template.spec" },
            _ => [],
        })
        {
            types[podSpec + ".volumes"] = Map("name");
            types[podSpec + ".imagePullSecrets"] = Map("name");
            foreach (var containers in new[] { podSpec + ".containers", podSpec + ".initContainers" })
            {
                types[containers] = Map("name");
                types[containers + "[].ports"] = Map("containerPort", "protocol");
                types[containers + "[].env"] = Map("name");
                types[containers + "[].volumeMounts"] = Map("mountPath");
            }
        }

        if (resource.Kind == "Service")
        {
            types["spec.ports"] = Map("port", "protocol");
        }

        types["status.conditions"] = Map("type");
        return new ListTypes(types);
    }

    // ObjectMeta's lists, the same in every kind.
    private static Dictionary<string, ListType> Common() => new(StringComparer.Ordinal)
    {
        ["metadata.finalizers"] = new(ListKind.Set, []),
        ["metadata.ownerReferences"] = Map("uid"),
    };

    private static ListType Map(params string[] keys) => new(ListKind.Map, keys);

    private static void Walk(JsonObject schema, string path, Dictionary<string, ListType> into)
    {
        if (schema["properties"] is JsonObject properties)
        {
            foreach (var (name, child) in properties)
            {
                if (child is JsonObject c && !(path.Length == 0 && name == "metadata"))
                {
                    Walk(c, Child(path, name), into);
                }
            }
        }

        if (schema["items"] is JsonObject items)
        {
            into[path] = (string?)schema["x-kubernetes-list-type"] switch
            {
                "map" => new ListType(ListKind.Map, (schema["x-kubernetes-list-map-keys"] as JsonArray)?.Select(k => (string)k!).ToList() ?? []),
                "set" => new ListType(ListKind.Set, []),
                _ => ListType.Atomic,
            };
            Walk(items, Entry(path), into);
        }
    }
}
