using MemoryCluster.Api;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Operator.Reconciling;
using Prometheus;

namespace MemoryCluster.Operator.Hosting;

/// <summary>
/// The operator's one metrics exposition (<c>GET /metrics</c> on the metrics port, Prometheus text format):
/// reconciles by result, their duration, errors, writes by kind, clusters by phase, and whether this replica leads.
/// </summary>
public sealed class OperatorMetrics
{
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Counter _reconciles;
    private readonly Counter _errors;
    private readonly Histogram _duration;
    private readonly Counter _writes;
    private readonly Gauge _clusters;
    private readonly Gauge _leader;

    public OperatorMetrics()
    {
        var f = Metrics.WithCustomRegistry(_registry);
        _reconciles = f.CreateCounter("memorycluster_operator_reconciles_total", "Reconciles of a MemoryCluster, by result (done, requeue, terminal, conflict, error).", "result");
        _errors = f.CreateCounter("memorycluster_operator_reconcile_errors_total", "Reconciles that failed with an error (retried with backoff).");
        _duration = f.CreateHistogram("memorycluster_operator_reconcile_duration_seconds", "Time one reconcile took, instance reads included.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 14) });
        _writes = f.CreateCounter("memorycluster_operator_writes_total", "Writes to the Kubernetes API and the instance managers, by kind (create, apply, delete, status, event, action).", "kind");
        _clusters = f.CreateGauge("memorycluster_operator_clusters", "MemoryClusters by status.phase as the operator last wrote it.", "phase");
        _leader = f.CreateGauge("memorycluster_operator_is_leader", "1 while this operator replica holds the leader Lease and reconciles.");
        foreach (var phase in Api.Phases.All)
        {
            _clusters.WithLabels(phase);
        }
    }

    public void Leading(bool leading) => _leader.Set(leading ? 1 : 0);

    public void Reconciled(string result, TimeSpan duration)
    {
        _reconciles.WithLabels(result).Inc();
        _duration.Observe(duration.TotalSeconds);
        if (result == "error")
        {
            _errors.Inc();
        }
    }

    public void Wrote(ReconcileWrites writes)
    {
        ArgumentNullException.ThrowIfNull(writes);
        _writes.WithLabels("create").Inc(writes.Created);
        _writes.WithLabels("apply").Inc(writes.Applied);
        _writes.WithLabels("delete").Inc(writes.Deleted);
        _writes.WithLabels("status").Inc(writes.StatusWritten ? 1 : 0);
        _writes.WithLabels("event").Inc(writes.Events);
        _writes.WithLabels("action").Inc(writes.Action is null ? 0 : 1);
    }

    /// <summary>Counts the clusters in <paramref name="clusters"/> by phase (at scrape time).</summary>
    public void CountPhases(IEnumerable<MemoryClusterResource> clusters)
    {
        var counts = Api.Phases.All.ToDictionary(p => p, _ => 0, StringComparer.Ordinal);
        foreach (var cluster in clusters)
        {
            var phase = cluster.Status?.Phase ?? Api.Phases.Pending;
            counts[phase] = counts.GetValueOrDefault(phase) + 1;
        }

        foreach (var (phase, count) in counts)
        {
            _clusters.WithLabels(phase).Set(count);
        }
    }

    public Task WriteAsync(Stream stream, CancellationToken cancellationToken) => _registry.CollectAndExportAsTextAsync(stream, cancellationToken);
}

/// <summary>A reconciler that times and counts another.</summary>
public sealed class MeasuredReconciler(IReconciler<MemoryClusterResource> inner, OperatorMetrics metrics, TimeProvider? time = null) : IReconciler<MemoryClusterResource>
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public async Task<ReconcileResult> ReconcileAsync(string key, MemoryClusterResource? current, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var result = "error";
        try
        {
            var outcome = await inner.ReconcileAsync(key, current, cancellationToken).ConfigureAwait(false);
            result = outcome switch
            {
                RequeueAfterResult => "requeue",
                TerminalResult => "terminal",
                _ => "done",
            };
            return outcome;
        }
        catch (Kube.Client.ConflictException)
        {
            result = "conflict";
            throw;
        }
        finally
        {
            metrics.Reconciled(result, _time.GetElapsedTime(started));
        }
    }
}
