using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Kube.Cluster.Node;

/// <summary>
/// A kubelet for one machine: binds pods that no node has to itself (the scheduler's job, trivially), runs each of
/// its pods through a <see cref="PodWorker"/>, and provisions claims as folders under its state folder (bound at
/// once; removed once the claim is deleted and no running pod mounts it). It reads everything through informers.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class NodeAgent
{
    private readonly Func<string, string, CancellationToken, Task<string>>? _tokens;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _logging;
    private readonly Informer<V1Pod> _pods;
    private readonly Informer<V1Service> _services;
    private readonly Informer<V1EndpointSlice> _slices;
    private readonly Informer<V1Secret> _secrets;
    private readonly Informer<V1ConfigMap> _configMaps;
    private readonly Informer<V1PersistentVolumeClaim> _claims;
    private readonly ConcurrentDictionary<string, (PodWorker Worker, Task Run)> _workers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _claimFolders = new(StringComparer.Ordinal);
    private readonly Signal _changed = new();

    /// <param name="client">The API server, as the node (a cluster admin here).</param>
    /// <param name="options">The node's settings.</param>
    /// <param name="tokens">Issues a token for (namespace, ServiceAccount): the TokenRequest the kubelet makes.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logging">Where the node logs.</param>
    public NodeAgent(IKubeApiClient client, NodeOptions options, Func<string, string, CancellationToken, Task<string>>? tokens = null, TimeProvider? time = null, ILoggerFactory? logging = null)
    {
        Client = client;
        Options = options;
        Time = time ?? TimeProvider.System;
        Pool = new AddressPool(options.PodNetwork);
        _tokens = tokens;
        _logging = logging ?? NullLoggerFactory.Instance;
        _logger = _logging.CreateLogger("node");
        var all = new InformerOptions();
        _pods = new Informer<V1Pod>(client, ResourceTypes.Pod, all, Time);
        _services = new Informer<V1Service>(client, ResourceTypes.Service, all, Time);
        _slices = new Informer<V1EndpointSlice>(client, Controllers.ClusterTypes.EndpointSlice, all, Time);
        _secrets = new Informer<V1Secret>(client, ResourceTypes.Secret, all, Time);
        _configMaps = new Informer<V1ConfigMap>(client, ResourceTypes.ConfigMap, all, Time);
        _claims = new Informer<V1PersistentVolumeClaim>(client, ResourceTypes.PersistentVolumeClaim, all, Time);
        _pods.Subscribe(e =>
        {
            Changed();
            if (_workers.TryGetValue(e.New.Metadata.Uid, out var worker))
            {
                worker.Worker.Wake();
            }
        });
        _claims.Subscribe(_ => Changed());
        _services.Subscribe(_ => WakeAll());
        _slices.Subscribe(_ => WakeAll());
        _secrets.Subscribe(_ => WakeAll());
        _configMaps.Subscribe(_ => WakeAll());
    }

    public IKubeApiClient Client { get; }

    public NodeOptions Options { get; }

    public TimeProvider Time { get; }

    internal AddressPool Pool { get; }

    /// <summary>The pid of a container's first process (in the node's namespace), for fault injection; null when it does not run here.</summary>
    public int? ContainerPid(string podUid, string container) => _workers.TryGetValue(podUid, out var worker) ? worker.Worker.PidOf(container) : null;

    /// <summary>
    /// What a container of a pod running here has written (stdout and stderr), for <c>kubectl logs</c>; null when it has
    /// no log (not started, or not a pod of this node).
    /// </summary>
    public string? ContainerLog(string podUid, string container)
    {
        if (podUid.Length == 0 || podUid.Contains('/', StringComparison.Ordinal) || podUid.Contains("..", StringComparison.Ordinal))
        {
            return null;
        }

        var path = new PodFiles(Path.Combine(Options.StateDirectory, "pods", podUid), new Dictionary<string, string>()).Log(container);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The processes of a container now (its first process and every one below it), for faults; empty when it does not run.</summary>
    public IReadOnlyList<ProcessEntry> ContainerProcesses(string podUid, string container)
    {
        if (ContainerPid(podUid, container) is not { } pid)
        {
            return [];
        }

        var all = ProcessTree.Read();
        return [.. all.Where(p => p.Pid == pid), .. ProcessTree.Below(all, pid)];
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.Combine(Options.StateDirectory, "pods"));
        Directory.CreateDirectory(Path.Combine(Options.StateDirectory, "claims"));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var caches = new List<Task>
        {
            _pods.RunAsync(stop.Token), _services.RunAsync(stop.Token), _slices.RunAsync(stop.Token),
            _secrets.RunAsync(stop.Token), _configMaps.RunAsync(stop.Token), _claims.RunAsync(stop.Token),
        };
        try
        {
            await Task.WhenAll(_pods.WaitForSyncAsync(stop.Token), _services.WaitForSyncAsync(stop.Token), _slices.WaitForSyncAsync(stop.Token),
                _secrets.WaitForSyncAsync(stop.Token), _configMaps.WaitForSyncAsync(stop.Token), _claims.WaitForSyncAsync(stop.Token)).ConfigureAwait(false);
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await BindAsync(stop.Token).ConfigureAwait(false);
                    await ProvisionAsync(stop.Token).ConfigureAwait(false);
                    RunPods(stop.Token);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or KubeApiException or HttpRequestException)
                {
                    // One pass failed (a folder, the API): the pods run on, and the next pass tries again.
                    LogPassFailed(_logger, e);
                }

                await _changed.WaitAsync(TimeSpan.FromSeconds(1), stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The node stops.
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            foreach (var (uid, worker) in _workers)
            {
                try
                {
                    await worker.Run.ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogWorkerFailed(_logger, uid, e);
                }
            }

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

    internal V1Pod? Pod(string key, string uid) => _pods.Get(key) is { } pod && pod.Metadata.Uid == uid ? pod : null;

    internal PodInputs Inputs(string ns)
    {
        var cluster = new List<KeyValuePair<string, string>>();
        if (Options.ApiServer is { } api)
        {
            cluster.Add(new("KUBERNETES_SERVICE_HOST", api.Host));
            cluster.Add(new("KUBERNETES_SERVICE_PORT", api.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        return new PodInputs(
            _secrets.List().Where(s => s.Metadata.NamespaceProperty == ns).ToDictionary(s => s.Metadata.Name, StringComparer.Ordinal),
            _configMaps.List().Where(c => c.Metadata.NamespaceProperty == ns).ToDictionary(c => c.Metadata.Name, StringComparer.Ordinal),
            cluster);
    }

    internal IReadOnlyDictionary<string, string> ClaimFolders(string ns) =>
        _claims.List().Where(c => c.Metadata.NamespaceProperty == ns && _claimFolders.ContainsKey(c.Metadata.Uid))
            .ToDictionary(c => c.Metadata.Name, c => _claimFolders[c.Metadata.Uid], StringComparer.Ordinal);

    internal IReadOnlyCollection<V1Service> Services() => _services.List();

    internal IReadOnlyCollection<V1EndpointSlice> Slices() => _slices.List();

    internal Task<string> TokenAsync(string ns, string account, CancellationToken cancellationToken) =>
        _tokens?.Invoke(ns, account, cancellationToken) ?? throw new InvalidOperationException("this node issues no ServiceAccount tokens");

    private void Changed() => _changed.Set();

    private void WakeAll()
    {
        foreach (var worker in _workers.Values)
        {
            worker.Worker.Wake();
        }
    }

    private async Task BindAsync(CancellationToken cancellationToken)
    {
        foreach (var pod in _pods.List().Where(p => string.IsNullOrEmpty(p.Spec.NodeName) && p.Metadata.DeletionTimestamp is null))
        {
            try
            {
                await Client.PatchAsync(ResourceTypes.Pod, pod.Metadata.NamespaceProperty, pod.Metadata.Name,
                    new JsonPatch([JsonPatchOperation.Test("/metadata/uid", pod.Metadata.Uid), JsonPatchOperation.Add("/spec/nodeName", Options.NodeName)]),
                    null, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NotFoundException or ConflictException or InvalidException)
            {
                // Gone or replaced meanwhile.
            }
        }
    }

    private void RunPods(CancellationToken cancellationToken)
    {
        foreach (var pod in _pods.List().Where(p => p.Spec.NodeName == Options.NodeName))
        {
            var uid = pod.Metadata.Uid;
            if (_workers.ContainsKey(uid) || (pod.Status?.Phase is "Succeeded" or "Failed" && pod.Metadata.DeletionTimestamp is null))
            {
                continue;
            }

            var worker = new PodWorker(this, ObjectKey.Of(pod.Metadata.NamespaceProperty, pod.Metadata.Name), uid, _logging.CreateLogger("pod"));
            _workers[uid] = (worker, Task.Run(() => worker.RunAsync(cancellationToken), CancellationToken.None));
        }

        foreach (var (uid, worker) in _workers.Where(w => w.Value.Run.IsCompleted).ToList())
        {
            if (worker.Run.Exception is { } error)
            {
                LogWorkerFailed(_logger, uid, error);
            }

            _workers.TryRemove(uid, out _);
        }
    }

    /// <summary>Claims get a folder and are bound; a deleted claim's folder goes once no running pod mounts it.</summary>
    private async Task ProvisionAsync(CancellationToken cancellationToken)
    {
        var claims = _claims.List().ToDictionary(c => c.Metadata.Uid, StringComparer.Ordinal);
        foreach (var claim in claims.Values)
        {
            var folder = Path.Combine(Options.StateDirectory, "claims", $"{claim.Metadata.NamespaceProperty}_{claim.Metadata.Name}_{claim.Metadata.Uid}");
            if (!_claimFolders.ContainsKey(claim.Metadata.Uid))
            {
                Directory.CreateDirectory(folder);
                _claimFolders[claim.Metadata.Uid] = folder;
            }

            if (claim.Status?.Phase != "Bound")
            {
                try
                {
                    await Client.PatchAsync(ResourceTypes.PersistentVolumeClaim, claim.Metadata.NamespaceProperty, claim.Metadata.Name, new MergePatch(new JsonObject
                    {
                        ["status"] = new JsonObject
                        {
                            ["phase"] = "Bound",
                            ["accessModes"] = JsonNode.Parse(k8s.KubernetesJson.Serialize(claim.Spec?.AccessModes ?? ["ReadWriteOnce"])),
                            ["capacity"] = JsonNode.Parse(k8s.KubernetesJson.Serialize(claim.Spec?.Resources?.Requests ?? new Dictionary<string, ResourceQuantity>())),
                        },
                    }), "status", cancellationToken).ConfigureAwait(false);
                }
                catch (NotFoundException)
                {
                    // Deleted meanwhile.
                }
            }
        }

        var mounted = _workers.Values.SelectMany(w => w.Worker.Claims).ToHashSet(StringComparer.Ordinal);
        foreach (var (uid, folder) in _claimFolders.Where(c => !claims.ContainsKey(c.Key)).ToList())
        {
            var parts = Path.GetFileName(folder).Split('_');
            if (mounted.Contains(parts[0] + "/" + parts[1]))
            {
                continue;
            }

            Directory.Delete(folder, recursive: true);
            _claimFolders.TryRemove(uid, out _);
            LogClaimRemoved(_logger, folder);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "a pass of the node failed; trying again")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "pod {Uid}: its worker failed")]
    private static partial void LogWorkerFailed(ILogger logger, string uid, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "claim folder {Folder} removed (its claim is gone)")]
    private static partial void LogClaimRemoved(ILogger logger, string folder);
}
