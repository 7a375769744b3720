using System.Diagnostics;
using System.Diagnostics.Metrics;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Kube.Controller;

/// <summary>The one outcome of a reconcile.</summary>
public abstract record ReconcileResult
{
    public static ReconcileResult Done { get; } = new DoneResult();

    public static ReconcileResult RequeueAfter(TimeSpan delay) => new RequeueAfterResult(delay);

    /// <summary>The object cannot progress until someone changes it: no retry (a change re-enqueues it).</summary>
    public static ReconcileResult Terminal(string reason) => new TerminalResult(reason);
}

public sealed record DoneResult : ReconcileResult;

public sealed record RequeueAfterResult(TimeSpan Delay) : ReconcileResult;

public sealed record TerminalResult(string Reason) : ReconcileResult;

/// <summary>Level-based reconciliation of one object, read from the cache (null when it is gone).</summary>
public interface IReconciler<in T>
    where T : class
{
    Task<ReconcileResult> ReconcileAsync(string key, T? current, CancellationToken cancellationToken);
}

public sealed record ReconcilerHostOptions
{
    public int MaxConcurrentReconciles { get; init; } = 4;

    /// <summary>Every key is enqueued again this often, so drift is corrected even without events.</summary>
    public TimeSpan ResyncPeriod { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>A 409 Conflict is retried after this short delay, and is not counted as an error.</summary>
    public TimeSpan ConflictRequeue { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Name of the controller in metrics and logs.</summary>
    public string Name { get; init; } = "memorycluster";
}

/// <summary>
/// Runs an informer, a work queue and a bounded pool of workers calling a reconciler. Handlers enqueue keys (never
/// objects); every change, status-only ones included, is reconciled; conflicts are short requeues; errors back
/// off per key; metrics count reconciles, errors and durations and report the queue depth.
/// </summary>
public sealed partial class ReconcilerHost<T> : BackgroundService
    where T : class
{
    private static readonly Meter Meter = new("MemoryCluster.Kube");
    private static readonly Counter<long> ReconcileCounter = Meter.CreateCounter<long>("memorycluster_reconcile_total");
    private static readonly Counter<long> ErrorCounter = Meter.CreateCounter<long>("memorycluster_reconcile_errors_total");
    private static readonly Histogram<double> DurationHistogram = Meter.CreateHistogram<double>("memorycluster_reconcile_duration_seconds", "s");

    private readonly Informer<T> _informer;
    private readonly WorkQueue<string> _queue;
    private readonly IReconciler<T> _reconciler;
    private readonly ReconcilerHostOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private long _reconciles;
    private long _errors;
    private long _conflicts;

    public ReconcilerHost(
        Informer<T> informer,
        IReconciler<T> reconciler,
        ReconcilerHostOptions? options = null,
        WorkQueue<string>? queue = null,
        TimeProvider? time = null,
        ILogger? logger = null)
    {
        _informer = informer;
        _reconciler = reconciler;
        _options = options ?? new ReconcilerHostOptions();
        _time = time ?? TimeProvider.System;
        _queue = queue ?? new WorkQueue<string>(time: _time);
        _logger = logger ?? NullLogger.Instance;
        _informer.Subscribe(e => _queue.Add(e.Key));
        Meter.CreateObservableGauge($"memorycluster_workqueue_depth_{_options.Name}", () => _queue.Count);
    }

    public WorkQueue<string> Queue => _queue;

    public long Reconciles => Interlocked.Read(ref _reconciles);

    public long Errors => Interlocked.Read(ref _errors);

    public long Conflicts => Interlocked.Read(ref _conflicts);

    /// <summary>Runs the informer, the resync loop and the workers until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var informer = _informer.RunAsync(stop.Token);
        var tasks = new List<Task> { informer };
        try
        {
            await _informer.WaitForSyncAsync(stop.Token).ConfigureAwait(false);
            tasks.Add(ResyncAsync(stop.Token));
            for (var i = 0; i < _options.MaxConcurrentReconciles; i++)
            {
                tasks.Add(WorkerAsync(stop.Token));
            }

            await Task.WhenAny(tasks).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutting down.
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            _queue.ShutDown();
            try
            {
                await Task.WhenAll(tasks).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The loops end by cancellation.
            }
        }
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => RunAsync(stoppingToken);

    private async Task ResyncAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(_options.ResyncPeriod, _time, cancellationToken).ConfigureAwait(false);
            foreach (var key in _informer.Keys())
            {
                _queue.Add(key);
            }
        }
    }

    private async Task WorkerAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var key = await _queue.GetAsync(cancellationToken).ConfigureAwait(false);
            if (key is null)
            {
                return;
            }

            try
            {
                await ProcessAsync(key, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _queue.Done(key);
            }
        }
    }

    private async Task ProcessAsync(string key, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var outcome = "done";
        try
        {
            var result = await _reconciler.ReconcileAsync(key, _informer.Get(key), cancellationToken).ConfigureAwait(false);
            _queue.Forget(key);
            switch (result)
            {
                case RequeueAfterResult requeue:
                    outcome = "requeue";
                    _queue.AddAfter(key, requeue.Delay);
                    break;
                case TerminalResult terminal:
                    outcome = "terminal";
                    LogTerminal(_logger, _options.Name, key, terminal.Reason);
                    break;
            }
        }
        catch (ConflictException)
        {
            // Someone wrote the object since we read it: read the newer one shortly. Not an error.
            outcome = "conflict";
            Interlocked.Increment(ref _conflicts);
            _queue.AddAfter(key, _options.ConflictRequeue);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            outcome = "error";
            Interlocked.Increment(ref _errors);
            ErrorCounter.Add(1, new KeyValuePair<string, object?>("controller", _options.Name));
            LogError(_logger, _options.Name, key, _queue.NumRequeues(key), e);
            _queue.AddRateLimited(key);
        }
        finally
        {
            Interlocked.Increment(ref _reconciles);
            ReconcileCounter.Add(1, new KeyValuePair<string, object?>("controller", _options.Name), new KeyValuePair<string, object?>("result", outcome));
            DurationHistogram.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("controller", _options.Name));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Controller} {Key}: stopped ({Reason}); waiting for a change")]
    private static partial void LogTerminal(ILogger logger, string controller, string key, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Controller} {Key}: reconcile failed (retry {Retries})")]
    private static partial void LogError(ILogger logger, string controller, string key, int retries, Exception exception);
}

/// <summary>Keys for owned objects: the controller owner's key, so a change to a child reconciles its parent.</summary>
public static class OwnerKeys
{
    public static string? ControllerOf(Api.Meta.ObjectMeta meta, string ownerKind)
    {
        var owner = meta.OwnerReferences?.FirstOrDefault(o => o.Controller == true && o.Kind == ownerKind);
        return owner is null ? null : ObjectKey.Of(meta.Namespace, owner.Name);
    }
}
