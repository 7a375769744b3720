using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>Roles, bindings and their parts as the API takes them (rbac.authorization.k8s.io/v1), for tests.</summary>
public static class RbacObjects
{
    private const string ApiVersion = "rbac.authorization.k8s.io/v1";

    public static JsonObject Rule(string[] groups, string[] resources, string[] verbs, string[]? names = null)
    {
        var rule = new JsonObject
        {
            ["apiGroups"] = Strings(groups),
            ["resources"] = Strings(resources),
            ["verbs"] = Strings(verbs),
        };
        if (names is not null)
        {
            rule["resourceNames"] = Strings(names);
        }

        return rule;
    }

    /// <summary>A Role in <paramref name="ns"/>, or a ClusterRole when it is null; the rules are copied.</summary>
    public static JsonObject Role(string name, string? ns, params IEnumerable<JsonObject> rules) => new()
    {
        ["apiVersion"] = ApiVersion,
        ["kind"] = ns is null ? "ClusterRole" : "Role",
        ["metadata"] = Metadata(name, ns),
        ["rules"] = new JsonArray([.. rules.Select(r => r.DeepClone())]),
    };

    /// <summary>A RoleBinding in <paramref name="ns"/>, or a ClusterRoleBinding when it is null; the subjects are copied.</summary>
    public static JsonObject Binding(string name, string? ns, string roleKind, string role, params JsonObject[] subjects) => new()
    {
        ["apiVersion"] = ApiVersion,
        ["kind"] = ns is null ? "ClusterRoleBinding" : "RoleBinding",
        ["metadata"] = Metadata(name, ns),
        ["roleRef"] = new JsonObject { ["apiGroup"] = "rbac.authorization.k8s.io", ["kind"] = roleKind, ["name"] = role },
        ["subjects"] = new JsonArray([.. subjects.Select(s => s.DeepClone())]),
    };

    public static JsonObject Subject(string kind, string name, string? ns = null)
    {
        var subject = new JsonObject { ["kind"] = kind, ["name"] = name };
        if (ns is not null)
        {
            subject["namespace"] = ns;
        }

        return subject;
    }

    /// <summary>The resource an object of these kinds is written to: <c>roles</c>, <c>clusterrolebindings</c>, ...</summary>
    public static string Plural(JsonObject obj) => ((string)obj["kind"]!).ToLowerInvariant() + "s";

    private static JsonObject Metadata(string name, string? ns)
    {
        var metadata = new JsonObject { ["name"] = name };
        if (ns is not null)
        {
            metadata["namespace"] = ns;
        }

        return metadata;
    }

    private static JsonArray Strings(string[] values) => new([.. values.Select(v => JsonValue.Create(v))]);
}
