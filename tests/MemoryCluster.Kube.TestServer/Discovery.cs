using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>The legacy discovery documents (<c>/apis</c>, <c>/api/v1</c>, <c>/apis/GROUP/VERSION</c>).</summary>
internal static class Discovery
{
    public static JsonObject Groups(IEnumerable<ResourceInfo> resources)
    {
        var groups = new JsonArray();
        foreach (var group in resources.Where(r => r.Group.Length > 0).GroupBy(r => r.Group).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var versions = new JsonArray();
            foreach (var v in group.Select(r => r.Version).Distinct())
            {
                versions.Add(new JsonObject { ["groupVersion"] = group.Key + "/" + v, ["version"] = v });
            }

            groups.Add(new JsonObject
            {
                ["name"] = group.Key,
                ["versions"] = versions,
                ["preferredVersion"] = versions[0]!.DeepClone(),
            });
        }

        return new JsonObject { ["kind"] = "APIGroupList", ["apiVersion"] = "v1", ["groups"] = groups };
    }

    public static JsonObject ResourceList(string group, string version, IEnumerable<ResourceInfo> resources)
    {
        var list = new JsonArray();
        foreach (var r in resources.Where(r => r.Group == group && r.Version == version).OrderBy(r => r.Plural, StringComparer.Ordinal))
        {
            list.Add(new JsonObject
            {
                ["name"] = r.Plural,
                ["singularName"] = r.Singular,
                ["namespaced"] = r.Namespaced,
                ["kind"] = r.Kind,
                ["verbs"] = new JsonArray("create", "delete", "get", "list", "patch", "update", "watch"),
                ["shortNames"] = new JsonArray([.. r.ShortNames.Select(s => (JsonNode)JsonValue.Create(s))]),
            });
            if (r.HasStatus)
            {
                list.Add(new JsonObject
                {
                    ["name"] = r.Plural + "/status",
                    ["singularName"] = "",
                    ["namespaced"] = r.Namespaced,
                    ["kind"] = r.Kind,
                    ["verbs"] = new JsonArray("get", "patch", "update"),
                });
            }
        }

        return new JsonObject
        {
            ["kind"] = "APIResourceList",
            ["apiVersion"] = "v1",
            ["groupVersion"] = group.Length == 0 ? version : group + "/" + version,
            ["resources"] = list,
        };
    }

    /// <summary>
    /// The <c>/openapi/v3</c> root. kubectl reads it to learn whether the server validates fields itself (the
    /// <c>fieldValidation</c> parameter on PATCH); the double declares that it does, and publishes no schemas.
    /// </summary>
    public static JsonObject OpenApiRoot(IEnumerable<ResourceInfo> resources)
    {
        var paths = new JsonObject();
        foreach (var gv in resources.Select(r => r.Group.Length == 0 ? "api/" + r.Version : "apis/" + r.Group + "/" + r.Version).Distinct())
        {
            paths[gv] = new JsonObject { ["serverRelativeURL"] = "/openapi/v3/" + gv + "?hash=0" };
        }

        return new JsonObject { ["paths"] = paths };
    }

    public static JsonObject OpenApiGroupVersion(string group, string version, IEnumerable<ResourceInfo> resources)
    {
        var paths = new JsonObject();
        foreach (var r in resources.Where(r => r.Group == group && r.Version == version))
        {
            var root = group.Length == 0 ? "/api/" + version : "/apis/" + group + "/" + version;
            var path = root + (r.Namespaced ? "/namespaces/{namespace}/" : "/") + r.Plural + "/{name}";
            var gvk = new JsonObject { ["group"] = group, ["version"] = version, ["kind"] = r.Kind };
            JsonObject Operation() => new()
            {
                ["x-kubernetes-group-version-kind"] = gvk.DeepClone(),
                ["parameters"] = new JsonArray(new JsonObject
                {
                    ["name"] = "fieldValidation",
                    ["in"] = "query",
                    ["schema"] = new JsonObject { ["type"] = "string" },
                }),
                ["responses"] = new JsonObject(),
            };
            paths[path] = new JsonObject { ["patch"] = Operation(), ["put"] = Operation() };
            paths[root + (r.Namespaced ? "/namespaces/{namespace}/" : "/") + r.Plural] = new JsonObject { ["post"] = Operation() };
        }

        return new JsonObject
        {
            ["openapi"] = "3.0.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.32.0" },
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = new JsonObject() },
        };
    }
}
