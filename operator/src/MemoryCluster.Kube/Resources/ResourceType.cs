using System.Reflection;
using System.Text.Json;
using k8s;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Kube.Serialization;

namespace MemoryCluster.Kube.Resources;

/// <summary>
/// Where a kind of resource lives in the REST API, how to read and write its metadata, and how to serialise it:
/// the typed client's equivalent of KubernetesClient's <c>GenericClient</c> constructor arguments.
/// </summary>
/// <param name="Group">The API group; empty for the core group.</param>
/// <param name="Version">The group's version, e.g. <c>v1</c>.</param>
/// <param name="Kind">The kind, e.g. <c>StatefulSet</c>.</param>
/// <param name="Plural">The resource name in paths, e.g. <c>statefulsets</c>.</param>
/// <param name="Namespaced">Whether objects of the kind live in a namespace.</param>
/// <param name="Metadata">The object's metadata as <see cref="V1ObjectMeta"/>: the object's own for the package's
/// models, a copy for types whose metadata has another shape. Change it with <paramref name="WithMetadata"/>.</param>
/// <param name="WithMetadata">A copy of the object with this metadata (the package's models are records: a
/// shallow <c>with</c> copy).</param>
/// <param name="Json">The serializer settings; null for KubernetesJson's own (IntOrString, ResourceQuantity, times).</param>
public sealed record ResourceType<T>(
    string Group,
    string Version,
    string Kind,
    string Plural,
    bool Namespaced,
    Func<T, V1ObjectMeta> Metadata,
    Func<T, V1ObjectMeta, T> WithMetadata,
    JsonSerializerOptions? Json = null)
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
        return ObjectKey.Of(meta.NamespaceProperty, meta.Name ?? string.Empty);
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

/// <summary>The resources the operator and the instance manager touch: the package's models, and our MemoryCluster.</summary>
public static class ResourceTypes
{
    public static ResourceType<V1Pod> Pod { get; } = Model<V1Pod>((o, m) => o with { Metadata = m });
    public static ResourceType<V1Service> Service { get; } = Model<V1Service>((o, m) => o with { Metadata = m });
    public static ResourceType<V1Secret> Secret { get; } = Model<V1Secret>((o, m) => o with { Metadata = m });
    public static ResourceType<V1ConfigMap> ConfigMap { get; } = Model<V1ConfigMap>((o, m) => o with { Metadata = m });
    public static ResourceType<V1ServiceAccount> ServiceAccount { get; } = Model<V1ServiceAccount>((o, m) => o with { Metadata = m });
    public static ResourceType<V1PersistentVolumeClaim> PersistentVolumeClaim { get; } = Model<V1PersistentVolumeClaim>((o, m) => o with { Metadata = m });

    /// <summary>core/v1 Event (the older API; <see cref="Event"/> is what we write).</summary>
    public static ResourceType<Corev1Event> CoreEvent { get; } = Model<Corev1Event>((o, m) => o with { Metadata = m }, json: KubeJson.Models);
    public static ResourceType<V1StatefulSet> StatefulSet { get; } = Model<V1StatefulSet>((o, m) => o with { Metadata = m });
    public static ResourceType<V1Deployment> Deployment { get; } = Model<V1Deployment>((o, m) => o with { Metadata = m });
    public static ResourceType<V1PodDisruptionBudget> PodDisruptionBudget { get; } = Model<V1PodDisruptionBudget>((o, m) => o with { Metadata = m });
    public static ResourceType<V1Role> Role { get; } = Model<V1Role>((o, m) => o with { Metadata = m });
    public static ResourceType<V1RoleBinding> RoleBinding { get; } = Model<V1RoleBinding>((o, m) => o with { Metadata = m });
    public static ResourceType<V1NetworkPolicy> NetworkPolicy { get; } = Model<V1NetworkPolicy>((o, m) => o with { Metadata = m });
    public static ResourceType<V1Lease> Lease { get; } = Model<V1Lease>((o, m) => o with { Metadata = m }, json: KubeJson.Models);

    /// <summary>events.k8s.io/v1 Event.</summary>
    public static ResourceType<Eventsv1Event> Event { get; } = Model<Eventsv1Event>((o, m) => o with { Metadata = m }, json: KubeJson.Models);
    public static ResourceType<V1CustomResourceDefinition> CustomResourceDefinition { get; } = Model<V1CustomResourceDefinition>((o, m) => o with { Metadata = m }, namespaced: false);

    /// <summary>
    /// Our custom resource keeps its own <see cref="ObjectMeta"/> (MemoryCluster.Api references no package) and our
    /// serializer settings; its metadata is bridged to <see cref="V1ObjectMeta"/> through JSON, which loses nothing:
    /// the package models every field of metav1.ObjectMeta, and ours keeps the fields it does not model.
    /// </summary>
    public static ResourceType<MemoryClusterResource> MemoryCluster { get; } =
        new(ApiGroup.Group, ApiGroup.Version, ApiGroup.Kind, ApiGroup.Plural, true,
            o => ToModel(o.Metadata), (o, m) => o with { Metadata = FromModel(m) }, KubeJson.Options);

    /// <summary>A kind the package models, placed by its <see cref="KubernetesEntityAttribute"/>.</summary>
    public static ResourceType<T> Model<T>(Func<T, V1ObjectMeta, T> withMetadata, bool namespaced = true, JsonSerializerOptions? json = null)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var entity = typeof(T).GetCustomAttribute<KubernetesEntityAttribute>()
            ?? throw new ArgumentException($"{typeof(T).Name} has no [KubernetesEntity]: it is not a kind of the API");
        return new(entity.Group ?? "", entity.ApiVersion, entity.Kind, entity.PluralName, namespaced,
            o => o.Metadata ?? new V1ObjectMeta(), withMetadata, json);
    }

    private static V1ObjectMeta ToModel(ObjectMeta meta) =>
        KubernetesJson.Deserialize<V1ObjectMeta>(JsonSerializer.SerializeToElement(meta, KubeJson.Options));

    private static ObjectMeta FromModel(V1ObjectMeta meta) =>
        JsonSerializer.Deserialize<ObjectMeta>(KubernetesJson.Serialize(meta), KubeJson.Options) ?? new ObjectMeta();
}
