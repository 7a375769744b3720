using MemoryCluster.Api;
using MemoryCluster.Api.Meta;

namespace MemoryCluster.Kube.Resources;

/// <summary>
/// Where a kind of resource lives in the REST API and how to read its metadata: the typed client's
/// equivalent of KubernetesClient's <c>GenericClient</c> constructor arguments.
/// </summary>
public sealed record ResourceType<T>(
    string Group,
    string Version,
    string Kind,
    string Plural,
    bool Namespaced,
    Func<T, ObjectMeta> Metadata,
    Func<T, ObjectMeta, T> WithMetadata)
    where T : class
{
    public string ApiVersion => Group.Length == 0 ? Version : Group + "/" + Version;

    /// <summary>The path of the collection, e.g. <c>/apis/apps/v1/namespaces/ns/statefulsets</c>.</summary>
    public string CollectionPath(string? ns)
    {
        var root = Group.Length == 0 ? "/api/" + Version : "/apis/" + Group + "/" + Version;
        if (Namespaced && !string.IsNullOrEmpty(ns))
        {
            return root + "/namespaces/" + Uri.EscapeDataString(ns) + "/" + Plural;
        }

        return root + "/" + Plural;
    }

    public string ItemPath(string? ns, string name) => CollectionPath(ns) + "/" + Uri.EscapeDataString(name);

    /// <summary>The cache key of an object: <c>namespace/name</c>, or <c>name</c> for cluster-scoped objects.</summary>
    public string KeyOf(T obj)
    {
        var meta = Metadata(obj);
        return ObjectKey.Of(meta.Namespace, meta.Name ?? string.Empty);
    }
}

/// <summary>Cache keys, as client-go's <c>MetaNamespaceKeyFunc</c> writes them.</summary>
public static class ObjectKey
{
    public static string Of(string? ns, string name) => string.IsNullOrEmpty(ns) ? name : ns + "/" + name;

    public static (string? Namespace, string Name) Split(string key)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? (null, key) : (key[..slash], key[(slash + 1)..]);
    }
}

/// <summary>The resources the operator and the instance manager touch.</summary>
public static class ResourceTypes
{
    public static ResourceType<Pod> Pod { get; } = Core<Pod>("Pod", "pods", (o, m) => o with { Metadata = m });
    public static ResourceType<Service> Service { get; } = Core<Service>("Service", "services", (o, m) => o with { Metadata = m });
    public static ResourceType<Secret> Secret { get; } = Core<Secret>("Secret", "secrets", (o, m) => o with { Metadata = m });
    public static ResourceType<ConfigMap> ConfigMap { get; } = Core<ConfigMap>("ConfigMap", "configmaps", (o, m) => o with { Metadata = m });
    public static ResourceType<ServiceAccount> ServiceAccount { get; } =
        Core<ServiceAccount>("ServiceAccount", "serviceaccounts", (o, m) => o with { Metadata = m });
    public static ResourceType<PersistentVolumeClaim> PersistentVolumeClaim { get; } =
        Core<PersistentVolumeClaim>("PersistentVolumeClaim", "persistentvolumeclaims", (o, m) => o with { Metadata = m });
    public static ResourceType<CoreEvent> CoreEvent { get; } = Core<CoreEvent>("Event", "events", (o, m) => o with { Metadata = m });
    public static ResourceType<StatefulSet> StatefulSet { get; } =
        Of<StatefulSet>("apps", "v1", "StatefulSet", "statefulsets", (o, m) => o with { Metadata = m });
    public static ResourceType<Deployment> Deployment { get; } =
        Of<Deployment>("apps", "v1", "Deployment", "deployments", (o, m) => o with { Metadata = m });
    public static ResourceType<PodDisruptionBudget> PodDisruptionBudget { get; } =
        Of<PodDisruptionBudget>("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", (o, m) => o with { Metadata = m });
    public static ResourceType<Role> Role { get; } =
        Of<Role>("rbac.authorization.k8s.io", "v1", "Role", "roles", (o, m) => o with { Metadata = m });
    public static ResourceType<RoleBinding> RoleBinding { get; } =
        Of<RoleBinding>("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", (o, m) => o with { Metadata = m });
    public static ResourceType<Lease> Lease { get; } =
        Of<Lease>("coordination.k8s.io", "v1", "Lease", "leases", (o, m) => o with { Metadata = m });
    public static ResourceType<EventsV1Event> Event { get; } =
        Of<EventsV1Event>("events.k8s.io", "v1", "Event", "events", (o, m) => o with { Metadata = m });
    public static ResourceType<CustomResourceDefinition> CustomResourceDefinition { get; } =
        new("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false,
            o => o.Metadata, (o, m) => o with { Metadata = m });

    public static ResourceType<MemoryClusterResource> MemoryCluster { get; } =
        new(ApiGroup.Group, ApiGroup.Version, ApiGroup.Kind, ApiGroup.Plural, true,
            o => o.Metadata, (o, m) => o with { Metadata = m });

    private static ResourceType<T> Core<T>(string kind, string plural, Func<T, ObjectMeta, T> with)
        where T : class, IKubernetesObject =>
        Of("", "v1", kind, plural, with);

    private static ResourceType<T> Of<T>(string group, string version, string kind, string plural, Func<T, ObjectMeta, T> with)
        where T : class, IKubernetesObject =>
        new(group, version, kind, plural, true, o => o.Metadata, with);
}
