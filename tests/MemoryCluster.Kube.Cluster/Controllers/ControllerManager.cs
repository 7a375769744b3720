using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Kube.Cluster.Controllers;

/// <summary>
/// kube-controller-manager for one machine: the StatefulSet, ReplicaSet, Deployment and EndpointSlice controllers,
/// each a work queue over the API server's objects (through informers, as the real ones are) that asks its planner
/// what to do and does it. Garbage collection is the API double's own (owner references, on every deletion).
/// After writing, a controller waits until its cache shows what it wrote before it takes the same object again, so
/// a stale cache never makes it create a pod twice (the real ones keep "expectations" for this).
/// </summary>
public sealed class ControllerManager
{
    private static readonly TimeSpan CacheWait = TimeSpan.FromSeconds(10);

    private readonly IKubeApiClient _client;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Informer<V1Pod> _pods;
    private readonly Informer<V1PersistentVolumeClaim> _claims;
    private readonly Informer<V1EndpointSlice> _slices;
    private readonly ReconcilerHost<V1StatefulSet> _statefulSets;
    private readonly ReconcilerHost<V1ReplicaSet> _replicaSets;
    private readonly ReconcilerHost<V1Deployment> _deployments;
    private readonly ReconcilerHost<V1Service> _services;
    private readonly Informer<V1ReplicaSet> _replicaSetCache;
    private readonly Informer<V1Service> _serviceCache;

    public ControllerManager(IKubeApiClient client, TimeProvider? time = null, ILoggerFactory? logging = null)
    {
        _client = client;
        _time = time ?? TimeProvider.System;
        logging ??= NullLoggerFactory.Instance;
        _logger = logging.CreateLogger("controllers");
        var options = new InformerOptions();
        _pods = new Informer<V1Pod>(client, ResourceTypes.Pod, options, _time);
        _claims = new Informer<V1PersistentVolumeClaim>(client, ResourceTypes.PersistentVolumeClaim, options, _time);
        _slices = new Informer<V1EndpointSlice>(client, ClusterTypes.EndpointSlice,
            options with { LabelSelector = EndpointSlicePlanner.ManagedByLabel + "=" + EndpointSlicePlanner.Manager }, _time);
        _replicaSetCache = new Informer<V1ReplicaSet>(client, ClusterTypes.ReplicaSet, options, _time);
        _serviceCache = new Informer<V1Service>(client, ResourceTypes.Service, options, _time);
        var hostOptions = new ReconcilerHostOptions { MaxConcurrentReconciles = 2, ResyncPeriod = TimeSpan.FromMinutes(5) };
        _statefulSets = new ReconcilerHost<V1StatefulSet>(new Informer<V1StatefulSet>(client, ResourceTypes.StatefulSet, options, _time),
            new Reconciler<V1StatefulSet>(ReconcileStatefulSetAsync), hostOptions with { Name = "statefulset" }, time: _time, logger: _logger);
        _replicaSets = new ReconcilerHost<V1ReplicaSet>(_replicaSetCache,
            new Reconciler<V1ReplicaSet>(ReconcileReplicaSetAsync), hostOptions with { Name = "replicaset" }, time: _time, logger: _logger);
        _deployments = new ReconcilerHost<V1Deployment>(new Informer<V1Deployment>(client, ResourceTypes.Deployment, options, _time),
            new Reconciler<V1Deployment>(ReconcileDeploymentAsync), hostOptions with { Name = "deployment" }, time: _time, logger: _logger);
        _services = new ReconcilerHost<V1Service>(_serviceCache,
            new Reconciler<V1Service>(ReconcileServiceAsync), hostOptions with { Name = "endpointslice" }, time: _time, logger: _logger);

        _pods.Subscribe(OnPod);
        _replicaSetCache.Subscribe(e => Owner(e.New.Metadata, "Deployment", _deployments.Queue.Add));
        _slices.Subscribe(e =>
        {
            if (e.New.Metadata.Labels?.TryGetValue(EndpointSlicePlanner.ServiceNameLabel, out var service) == true)
            {
                _services.Queue.Add(ObjectKey.Of(e.New.Metadata.NamespaceProperty, service));
            }
        });
    }

    /// <summary>Runs every controller until cancelled; the shared caches are filled before any controller acts.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var caches = new[] { _pods.RunAsync(stop.Token), _claims.RunAsync(stop.Token), _slices.RunAsync(stop.Token) };
        try
        {
            await Task.WhenAll(_pods.WaitForSyncAsync(stop.Token), _claims.WaitForSyncAsync(stop.Token), _slices.WaitForSyncAsync(stop.Token)).ConfigureAwait(false);
            await Task.WhenAll(
                _statefulSets.RunAsync(stop.Token),
                _replicaSets.RunAsync(stop.Token),
                _deployments.RunAsync(stop.Token),
                _services.RunAsync(stop.Token)).ConfigureAwait(false);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await Task.WhenAll(caches).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The caches end by cancellation.
            }
        }
    }

    private void OnPod(InformerEvent<V1Pod> e)
    {
        Owner(e.New.Metadata, "StatefulSet", _statefulSets.Queue.Add);
        Owner(e.New.Metadata, "ReplicaSet", _replicaSets.Queue.Add);
        foreach (var service in _serviceCache.List())
        {
            if (service.Metadata.NamespaceProperty == e.New.Metadata.NamespaceProperty
                && (Workloads.Matches(service.Spec?.Selector, e.New.Metadata.Labels) || Workloads.Matches(service.Spec?.Selector, e.Old?.Metadata.Labels)))
            {
                _services.Queue.Add(ObjectKey.Of(service.Metadata.NamespaceProperty, service.Metadata.Name));
            }
        }
    }

    private static void Owner(V1ObjectMeta meta, string kind, Action<string> enqueue)
    {
        if (meta.OwnerReferences?.FirstOrDefault(r => r.Controller == true && r.Kind == kind) is { } owner)
        {
            enqueue(ObjectKey.Of(meta.NamespaceProperty, owner.Name));
        }
    }

    // ---- StatefulSet ----

    private async Task<ReconcileResult> ReconcileStatefulSetAsync(string key, V1StatefulSet? set, CancellationToken cancellationToken)
    {
        if (set is null || set.Metadata.DeletionTimestamp is not null)
        {
            return ReconcileResult.Done;
        }

        var ns = set.Metadata.NamespaceProperty;
        var pods = _pods.List().Where(p => Workloads.IsControlledBy(p, "StatefulSet", set.Metadata)).ToList();
        var claims = _claims.List().Where(c => c.Metadata.NamespaceProperty == ns).ToDictionary(c => c.Metadata.Name, StringComparer.Ordinal);
        var plan = StatefulSetPlanner.Plan(set, pods, claims, _time.GetUtcNow());
        foreach (var claim in plan.CreateClaims)
        {
            await CreateAsync(ResourceTypes.PersistentVolumeClaim, claim, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (claim, owner) in plan.ClaimOwners)
        {
            var owners = new JsonArray([.. (claims[claim].Metadata.OwnerReferences ?? []).Append(owner).Select(o => JsonNode.Parse(KubernetesJson.Serialize(o)))]);
            await _client.PatchAsync(ResourceTypes.PersistentVolumeClaim, ns, claim,
                new MergePatch(new JsonObject { ["metadata"] = new JsonObject { ["ownerReferences"] = owners } }), null, cancellationToken).ConfigureAwait(false);
        }

        var made = new List<string>();
        foreach (var pod in plan.CreatePods)
        {
            made.Add((await CreateAsync(ResourceTypes.Pod, pod, cancellationToken).ConfigureAwait(false)).Metadata.Uid);
        }

        var gone = new List<V1Pod>();
        foreach (var pod in plan.DeletePods)
        {
            await DeleteAsync(pod, cancellationToken).ConfigureAwait(false);
            gone.Add(pod);
        }

        await WriteStatusAsync(ResourceTypes.StatefulSet, set, set.Status, plan.Status, cancellationToken).ConfigureAwait(false);
        await WaitForCacheAsync(made, gone, cancellationToken).ConfigureAwait(false);
        return MinReadyRequeue(set.Spec.MinReadySeconds, plan.Status.AvailableReplicas, plan.Status.ReadyReplicas);
    }

    // ---- ReplicaSet ----

    private async Task<ReconcileResult> ReconcileReplicaSetAsync(string key, V1ReplicaSet? set, CancellationToken cancellationToken)
    {
        if (set is null || set.Metadata.DeletionTimestamp is not null)
        {
            return ReconcileResult.Done;
        }

        var pods = _pods.List().Where(p => Workloads.IsControlledBy(p, "ReplicaSet", set.Metadata)).ToList();
        var plan = ReplicaSetPlanner.Plan(set, pods, _time.GetUtcNow());
        var made = new List<string>();
        foreach (var pod in plan.CreatePods)
        {
            made.Add((await CreateAsync(ResourceTypes.Pod, pod, cancellationToken).ConfigureAwait(false)).Metadata.Uid);
        }

        foreach (var pod in plan.DeletePods)
        {
            await DeleteAsync(pod, cancellationToken).ConfigureAwait(false);
        }

        await WriteStatusAsync(ClusterTypes.ReplicaSet, set, set.Status, plan.Status, cancellationToken).ConfigureAwait(false);
        await WaitForCacheAsync(made, plan.DeletePods, cancellationToken).ConfigureAwait(false);
        return MinReadyRequeue(set.Spec.MinReadySeconds, plan.Status.AvailableReplicas, plan.Status.ReadyReplicas);
    }

    // ---- Deployment ----

    private async Task<ReconcileResult> ReconcileDeploymentAsync(string key, V1Deployment? deployment, CancellationToken cancellationToken)
    {
        if (deployment is null || deployment.Metadata.DeletionTimestamp is not null)
        {
            return ReconcileResult.Done;
        }

        var ns = deployment.Metadata.NamespaceProperty;
        var sets = _replicaSetCache.List().Where(s => Workloads.IsControlledBy(s, "Deployment", deployment.Metadata)).ToList();
        var plan = DeploymentPlanner.Plan(deployment, sets, _time.GetUtcNow());
        string? made = null;
        if (plan.Create is { } create)
        {
            made = (await CreateAsync(ClusterTypes.ReplicaSet, create, cancellationToken).ConfigureAwait(false)).Metadata.Uid;
        }

        foreach (var (name, replicas) in plan.Scale)
        {
            await _client.PatchAsync(ClusterTypes.ReplicaSet, ns, name,
                new MergePatch(new JsonObject { ["spec"] = new JsonObject { ["replicas"] = replicas } }), null, cancellationToken).ConfigureAwait(false);
        }

        foreach (var name in plan.Delete)
        {
            await IgnoreNotFoundAsync(_client.DeleteAsync(ClusterTypes.ReplicaSet, ns, name, null, cancellationToken)).ConfigureAwait(false);
        }

        await WriteStatusAsync(ResourceTypes.Deployment, deployment, deployment.Status, plan.Status, cancellationToken).ConfigureAwait(false);
        if (made is not null)
        {
            await UntilAsync(() => _replicaSetCache.List().Any(s => s.Metadata.Uid == made), cancellationToken).ConfigureAwait(false);
        }

        return ReconcileResult.Done;
    }

    // ---- EndpointSlice ----

    private async Task<ReconcileResult> ReconcileServiceAsync(string key, V1Service? service, CancellationToken cancellationToken)
    {
        if (service is null || service.Metadata.DeletionTimestamp is not null)
        {
            return ReconcileResult.Done;
        }

        var ns = service.Metadata.NamespaceProperty;
        var pods = _pods.List().Where(p => p.Metadata.NamespaceProperty == ns).ToList();
        var existing = _slices.List().Where(s => s.Metadata.NamespaceProperty == ns
            && s.Metadata.Labels?.TryGetValue(EndpointSlicePlanner.ServiceNameLabel, out var name) == true && name == service.Metadata.Name).ToList();
        var plan = EndpointSlicePlanner.Plan(service, pods, existing);
        foreach (var slice in plan.Create)
        {
            await CreateAsync(ClusterTypes.EndpointSlice, slice, cancellationToken).ConfigureAwait(false);
        }

        foreach (var slice in plan.Update)
        {
            await _client.ReplaceAsync(ClusterTypes.EndpointSlice, slice, cancellationToken).ConfigureAwait(false);
        }

        foreach (var slice in plan.Delete)
        {
            await IgnoreNotFoundAsync(_client.DeleteAsync(ClusterTypes.EndpointSlice, ns, slice.Metadata.Name, null, cancellationToken)).ConfigureAwait(false);
        }

        var written = plan.Create.Concat(plan.Update).Select(s => s.Metadata.Name).ToList();
        if (written.Count > 0 || plan.Delete.Count > 0)
        {
            // The next round must see these writes, or it would write them again.
            var deleted = plan.Delete.Select(s => s.Metadata.Name).ToHashSet(StringComparer.Ordinal);
            await UntilAsync(() =>
            {
                var now = _slices.List().Where(s => s.Metadata.NamespaceProperty == ns).ToDictionary(s => s.Metadata.Name, StringComparer.Ordinal);
                return written.All(now.ContainsKey) && !deleted.Any(now.ContainsKey)
                    && plan.Update.All(u => now[u.Metadata.Name].Metadata.ResourceVersion != u.Metadata.ResourceVersion);
            }, cancellationToken).ConfigureAwait(false);
        }

        return ReconcileResult.Done;
    }

    // ---- acting ----

    private async Task<T> CreateAsync<T>(ResourceType<T> type, T obj, CancellationToken cancellationToken)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        try
        {
            return await _client.CreateAsync(type, obj, cancellationToken).ConfigureAwait(false);
        }
        catch (AlreadyExistsException)
        {
            // Made by an earlier round whose write the cache had not shown yet.
            return await _client.GetAsync(type, obj.Metadata.NamespaceProperty, obj.Metadata.Name, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task DeleteAsync(V1Pod pod, CancellationToken cancellationToken) =>
        await IgnoreNotFoundAsync(_client.DeleteAsync(ResourceTypes.Pod, pod.Metadata.NamespaceProperty, pod.Metadata.Name,
            new V1DeleteOptions { Preconditions = new V1Preconditions { Uid = pod.Metadata.Uid } }, cancellationToken)).ConfigureAwait(false);

    private static async Task IgnoreNotFoundAsync<T>(Task<T> request)
    {
        try
        {
            await request.ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
            // Gone already: what the deletion wanted.
        }
        catch (ConflictException)
        {
            // A different object of that name now (the uid precondition): not ours to delete.
        }
    }

    /// <summary>Writes the status when it differs from what was read (a merge patch of the whole status).</summary>
    private async Task WriteStatusAsync<T, TStatus>(ResourceType<T> type, T obj, TStatus? before, TStatus after, CancellationToken cancellationToken)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var json = KubernetesJson.Serialize(after);
        if (before is not null && KubernetesJson.Serialize(before) == json)
        {
            return;
        }

        try
        {
            await _client.PatchAsync(type, obj.Metadata.NamespaceProperty, obj.Metadata.Name,
                new MergePatch(new JsonObject { ["status"] = JsonNode.Parse(json) }), "status", cancellationToken).ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
            // Deleted meanwhile.
        }
    }

    private Task WaitForCacheAsync(IReadOnlyCollection<string> made, IReadOnlyCollection<V1Pod> deleted, CancellationToken cancellationToken) =>
        made.Count == 0 && deleted.Count == 0
            ? Task.CompletedTask
            : UntilAsync(() =>
            {
                var uids = _pods.List().ToDictionary(p => p.Metadata.Uid, StringComparer.Ordinal);
                return made.All(uids.ContainsKey)
                    && deleted.All(d => !uids.TryGetValue(d.Metadata.Uid, out var now) || now.Metadata.DeletionTimestamp is not null);
            }, cancellationToken);

    /// <summary>Polls the caches (every 20 ms, up to 10 s; past that the next round acts on what it sees).</summary>
    private async Task UntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        var deadline = _time.GetUtcNow() + CacheWait;
        while (!condition() && _time.GetUtcNow() < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private static ReconcileResult MinReadyRequeue(int? minReadySeconds, int? available, int? ready) =>
        minReadySeconds is > 0 && available < ready ? ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(minReadySeconds.Value)) : ReconcileResult.Done;

    private sealed class Reconciler<T>(Func<string, T?, CancellationToken, Task<ReconcileResult>> reconcile) : IReconciler<T>
        where T : class
    {
        public Task<ReconcileResult> ReconcileAsync(string key, T? current, CancellationToken cancellationToken) => reconcile(key, current, cancellationToken);
    }
}
