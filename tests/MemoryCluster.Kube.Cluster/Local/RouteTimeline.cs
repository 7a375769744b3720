using System.Diagnostics;
using System.Globalization;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Cluster.Controllers;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Kube.Cluster.Local;

/// <summary>
/// What the route to a cluster's primary was made of, as the API server saw it: each change of a pod's role label,
/// readiness, IP or deletion, and of the ready addresses of the <c>-rw</c> Service's slices, with when the watch
/// delivered it (Stopwatch ticks). e2e-kube prints the part of it inside a slow failover.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class RouteTimeline : IAsyncDisposable
{
    private readonly Informer<V1Pod> _pods;
    private readonly Informer<V1EndpointSlice> _slices;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;
    private readonly List<(long At, string What)> _entries = [];

    public RouteTimeline(IKubeApiClient client, string ns, string cluster)
    {
        _pods = new Informer<V1Pod>(client, ResourceTypes.Pod, new InformerOptions { Namespace = ns, LabelSelector = $"{ClusterLabels.Cluster}={cluster}" });
        _slices = new Informer<V1EndpointSlice>(client, ClusterTypes.EndpointSlice, new InformerOptions { Namespace = ns, LabelSelector = $"{EndpointSlicePlanner.ServiceNameLabel}={cluster}-rw" });
        _pods.Subscribe(e => Add(Describe(e.Old, e.New, e.Type)));
        _slices.Subscribe(e => Add(Describe(e.Old, e.New)));
        _running = Task.WhenAll(_pods.RunAsync(_stop.Token), _slices.RunAsync(_stop.Token));
    }

    /// <summary>The entries delivered between two Stopwatch timestamps, each with its time after <paramref name="from"/>.</summary>
    public IReadOnlyList<string> Between(long from, long until)
    {
        lock (_entries)
        {
            return [.. _entries.Where(e => e.At >= from && e.At <= until)
                .Select(e => $"+{Stopwatch.GetElapsedTime(from, e.At).TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s {e.What}")];
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _running.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The watches end by cancellation.
        }

        _stop.Dispose();
    }

    /// <summary>What changed in a pod that routing depends on, or null when nothing of it did.</summary>
    internal static string? Describe(V1Pod? old, V1Pod now, k8s.WatchEventType type)
    {
        var name = now.Metadata.Name;
        if (type == k8s.WatchEventType.Deleted)
        {
            return $"pod {name} removed";
        }

        var was = old is null ? null : Facts(old);
        var facts = Facts(now);
        return was == facts ? null : $"pod {name}: {facts}";

        static string Facts(V1Pod pod) =>
            $"role={(pod.Metadata.Labels is { } labels && labels.TryGetValue(ClusterLabels.Role, out var role) ? role : "-")} " +
            $"ready={pod.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready")?.Status ?? "-"} " +
            $"ip={pod.Status?.PodIP ?? "-"}{(pod.Metadata.DeletionTimestamp is null ? "" : " terminating")}";
    }

    /// <summary>The slice's ready addresses when they changed, or null.</summary>
    internal static string? Describe(V1EndpointSlice? old, V1EndpointSlice now)
    {
        var was = old is null ? null : Ready(old);
        var ready = Ready(now);
        return was == ready ? null : $"slice {now.Metadata.Name}: ready [{ready}]";

        static string Ready(V1EndpointSlice slice) =>
            string.Join(", ", (slice.Endpoints ?? []).Where(e => e.Conditions?.Ready == true).Select(e => e.TargetRef?.Name ?? e.Addresses[0]).Order(StringComparer.Ordinal));
    }

    private void Add(string? what)
    {
        if (what is null)
        {
            return;
        }

        lock (_entries)
        {
            _entries.Add((Stopwatch.GetTimestamp(), what));
        }
    }
}
