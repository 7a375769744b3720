using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Operator.Planning;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Operator.Reconciling;

/// <summary>One kind the operator owns: its informer (objects labelled as the operator's) and its writes.</summary>
public interface IOwnedKind
{
    string Kind { get; }

    /// <summary>The cached object as JSON, or null.</summary>
    JsonObject? Get(string ns, string name);

    /// <summary>Names of the cached objects in <paramref name="ns"/> whose controller owner has <paramref name="uid"/>.</summary>
    IReadOnlyList<string> OwnedBy(string ns, string uid);

    Task ApplyAsync(IKubeApiClient client, IKubernetesObject<V1ObjectMeta> obj, string fieldManager, CancellationToken cancellationToken);

    Task DeleteAsync(IKubeApiClient client, string ns, string name, CancellationToken cancellationToken);

    Task RunAsync(CancellationToken cancellationToken);

    Task WaitForSyncAsync(CancellationToken cancellationToken);

    /// <summary>Calls <paramref name="handler"/> with the namespace/name key of the MemoryCluster that controls a changed object.</summary>
    void OnOwnerChanged(Action<string> handler);
}

/// <summary>An <see cref="IOwnedKind"/> over one informer.</summary>
public sealed class OwnedKind<T> : IOwnedKind
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    private readonly ResourceType<T> _type;
    private readonly Informer<T> _informer;

    public OwnedKind(IKubeApiClient client, ResourceType<T> type, InformerOptions options, ILogger? logger = null)
    {
        _type = type;
        _informer = new Informer<T>(client, type, options, logger: logger);
    }

    public string Kind => _type.Kind;

    public IInformer<T> Informer => _informer;

    public JsonObject? Get(string ns, string name) => _informer.Get(ObjectKey.Of(ns, name)) is { } obj ? ObjectDiff.ToJson(obj) : null;

    public T? GetTyped(string ns, string name) => _informer.Get(ObjectKey.Of(ns, name));

    public IReadOnlyList<T> List(string ns) => [.. _informer.List().Where(o => o.Metadata.NamespaceProperty == ns)];

    public IReadOnlyList<string> OwnedBy(string ns, string uid) =>
        [.. _informer.List()
            .Where(o => o.Metadata.NamespaceProperty == ns && o.Metadata.OwnerReferences?.Any(r => r.Controller == true && r.Uid == uid) == true)
            .Select(o => o.Metadata.Name)];

    public Task ApplyAsync(IKubeApiClient client, IKubernetesObject<V1ObjectMeta> obj, string fieldManager, CancellationToken cancellationToken) =>
        client.ApplyAsync(_type, (T)obj, fieldManager, force: true, subresource: null, cancellationToken);

    public async Task DeleteAsync(IKubeApiClient client, string ns, string name, CancellationToken cancellationToken)
    {
        try
        {
            await client.DeleteAsync(_type, ns, name, null, cancellationToken).ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
            // Gone already: what a delete wants.
        }
    }

    public Task RunAsync(CancellationToken cancellationToken) => _informer.RunAsync(cancellationToken);

    public Task WaitForSyncAsync(CancellationToken cancellationToken) => _informer.WaitForSyncAsync(cancellationToken);

    public void OnOwnerChanged(Action<string> handler) => _informer.Subscribe(e =>
    {
        if (ClusterKey(e.New.Metadata) is { } key)
        {
            handler(key);
        }
    });

    /// <summary>
    /// The namespace/name key of the MemoryCluster a changed object belongs to: its controller owner when that is a
    /// MemoryCluster; else its cluster label (a pod, whose controller is its StatefulSet: a change of its role
    /// label after a failover inside PostgreSQL, with no StatefulSet change, must still reach the status at once,
    /// not at the next status poll); else null.
    /// </summary>
    public static string? ClusterKey(V1ObjectMeta meta)
    {
        ArgumentNullException.ThrowIfNull(meta);
        var owner = meta.OwnerReferences?.FirstOrDefault(r => r.Controller == true && r.Kind == Api.ApiGroup.Kind);
        if (owner is not null)
        {
            return ObjectKey.Of(meta.NamespaceProperty, owner.Name);
        }

        return meta.Labels is { } labels && labels.TryGetValue(ClusterLabels.Cluster, out var cluster) && !string.IsNullOrEmpty(cluster)
            ? ObjectKey.Of(meta.NamespaceProperty, cluster)
            : null;
    }
}

/// <summary>
/// The caches of every kind a MemoryCluster owns, each an informer on the operator's label
/// (<c>app.kubernetes.io/managed-by=memorycluster-operator</c>), so the operator never caches anyone else's objects.
/// </summary>
public sealed class OwnedObjects
{
    public const string Selector = ClusterLabels.ManagedBy + "=" + ClusterLabels.Manager;

    public OwnedObjects(IKubeApiClient client, string? watchNamespace, ILoggerFactory? logging = null)
    {
        var options = new InformerOptions { Namespace = watchNamespace, LabelSelector = Selector };
        OwnedKind<TK> Make<TK>(ResourceType<TK> type)
            where TK : class, IKubernetesObject<V1ObjectMeta> =>
            new(client, type, options, logging?.CreateLogger($"informer.{type.Plural}"));

        Secrets = Make(ResourceTypes.Secret);
        StatefulSets = Make(ResourceTypes.StatefulSet);
        Deployments = Make(ResourceTypes.Deployment);
        Pods = Make(ResourceTypes.Pod);
        Kinds =
        [
            Make(ResourceTypes.ConfigMap),
            Make(ResourceTypes.ServiceAccount),
            Make(ResourceTypes.Role),
            Make(ResourceTypes.RoleBinding),
            Make(ResourceTypes.Service),
            Make(ResourceTypes.PodDisruptionBudget),
            Make(ResourceTypes.NetworkPolicy),
            StatefulSets,
            Deployments,
        ];
    }

    public OwnedKind<V1Secret> Secrets { get; }

    public OwnedKind<V1StatefulSet> StatefulSets { get; }

    public OwnedKind<V1Deployment> Deployments { get; }

    public OwnedKind<V1Pod> Pods { get; }

    /// <summary>The kinds the planner renders and the executor applies (Secrets are made once, not applied).</summary>
    public IReadOnlyList<IOwnedKind> Kinds { get; }

    public IEnumerable<IOwnedKind> All => Kinds.Append(Secrets).Append(Pods);

    public IOwnedKind KindOf(IKubernetesObject<V1ObjectMeta> obj) =>
        Kinds.FirstOrDefault(k => k.Kind == obj.Kind) ?? throw new InvalidOperationException($"the operator does not manage {obj.Kind}");

    public Task RunAsync(CancellationToken cancellationToken) => Task.WhenAll(All.Select(k => k.RunAsync(cancellationToken)));

    public Task WaitForSyncAsync(CancellationToken cancellationToken) => Task.WhenAll(All.Select(k => k.WaitForSyncAsync(cancellationToken)));
}
