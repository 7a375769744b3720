using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>A printer column of a CRD (<c>additionalPrinterColumns</c>).</summary>
internal sealed record PrinterColumn(string Name, string Type, string JsonPath, string Description, int Priority);

/// <summary>A kind of resource the double serves: a built-in one, or one a CRD defined.</summary>
internal sealed record ResourceInfo(
    string Group,
    string Version,
    string Kind,
    string Plural,
    string Singular,
    bool Namespaced,
    bool HasStatus,
    IReadOnlyList<string> ShortNames,
    IReadOnlyList<PrinterColumn> Columns,
    JsonObject? Schema,
    bool IsCustom)
{
    public string GroupVersion => Group.Length == 0 ? Version : Group + "/" + Version;

    public string Id => Group + "/" + Plural;

    public string ListKind => Kind + "List";

    public static IReadOnlyList<ResourceInfo> BuiltIn { get; } =
    [
        Core("Namespace", "namespaces", false, true),
        Core("Pod", "pods", true, true, "po"),
        Core("Service", "services", true, true, "svc"),
        Core("Secret", "secrets", true, false),
        Core("ConfigMap", "configmaps", true, false, "cm"),
        Core("ServiceAccount", "serviceaccounts", true, false, "sa"),
        Core("PersistentVolumeClaim", "persistentvolumeclaims", true, true, "pvc"),
        Core("Event", "events", true, false, "ev"),
        Of("apps", "StatefulSet", "statefulsets", true, "sts"),
        Of("apps", "Deployment", "deployments", true, "deploy"),
        Of("apps", "ReplicaSet", "replicasets", true, "rs"),
        Of("discovery.k8s.io", "EndpointSlice", "endpointslices", false),
        Of("policy", "PodDisruptionBudget", "poddisruptionbudgets", true, "pdb"),
        Of("rbac.authorization.k8s.io", "Role", "roles", false),
        Of("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", false),
        new("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false, false, [], [], null, false),
        new("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false, false, [], [], null, false),
        Of("coordination.k8s.io", "Lease", "leases", false),
        Of("networking.k8s.io", "NetworkPolicy", "networkpolicies", false, "netpol"),
        Of("events.k8s.io", "Event", "events", false, "ev"),
        new("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", "customresourcedefinition",
            false, true, ["crd", "crds"], [], null, false),
    ];

    private static ResourceInfo Core(string kind, string plural, bool namespaced, bool status, params string[] shortNames) =>
        new("", "v1", kind, plural, kind.ToLowerInvariant(), namespaced, status, shortNames, [], null, false);

    private static ResourceInfo Of(string group, string kind, string plural, bool status, params string[] shortNames) =>
        new(group, "v1", kind, plural, kind.ToLowerInvariant(), true, status, shortNames, [], null, false);

    /// <summary>The resources a CRD defines: one per served version.</summary>
    public static IEnumerable<ResourceInfo> FromCrd(JsonObject crd)
    {
        var spec = crd["spec"] as JsonObject ?? throw ApiError.Invalid("CustomResourceDefinition", "", "spec", "Required value");
        var names = spec["names"] as JsonObject ?? throw ApiError.Invalid("CustomResourceDefinition", "", "spec.names", "Required value");
        var group = (string?)spec["group"] ?? throw ApiError.Invalid("CustomResourceDefinition", "", "spec.group", "Required value");
        var kind = (string?)names["kind"] ?? throw ApiError.Invalid("CustomResourceDefinition", "", "spec.names.kind", "Required value");
        var plural = (string?)names["plural"] ?? throw ApiError.Invalid("CustomResourceDefinition", "", "spec.names.plural", "Required value");
        var singular = (string?)names["singular"] ?? kind.ToLowerInvariant();
        var shortNames = (names["shortNames"] as JsonArray)?.Select(n => (string)n!).ToList() ?? [];
        var namespaced = (string?)spec["scope"] != "Cluster";
        foreach (var v in spec["versions"] as JsonArray ?? [])
        {
            if (v is not JsonObject version || (bool?)version["served"] == false)
            {
                continue;
            }

            var columns = new List<PrinterColumn>();
            foreach (var c in version["additionalPrinterColumns"] as JsonArray ?? [])
            {
                columns.Add(new PrinterColumn(
                    (string)c!["name"]!, (string)c["type"]!, (string)c["jsonPath"]!, (string?)c["description"] ?? "", (int?)c["priority"] ?? 0));
            }

            var hasStatus = version["subresources"]?["status"] is not null;
            var schema = version["schema"]?["openAPIV3Schema"] as JsonObject;
            yield return new ResourceInfo(group, (string)version["name"]!, kind, plural, singular, namespaced, hasStatus, shortNames, columns,
                schema, true);
        }
    }
}
