using System.Net;
using MemoryCluster.Api;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Operator.Reconciling;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Operator.Hosting;

/// <summary>How <c>memorycluster operator run</c> is configured (its flags; the chart sets them).</summary>
public sealed record OperatorOptions
{
    /// <summary>Namespace to watch; null for all namespaces.</summary>
    public string? WatchNamespace { get; init; }

    /// <summary>Run only while holding the leader Lease (two or more replicas).</summary>
    public bool LeaderElect { get; init; }

    /// <summary>Namespace of the leader Lease (the operator's own).</summary>
    public string LeaseNamespace { get; init; } = "default";

    public string LeaseName { get; init; } = "memorycluster-operator";

    /// <summary>This replica's identity in the Lease (its pod name).</summary>
    public string Identity { get; init; } = Environment.MachineName;

    /// <summary>Port of <c>/metrics</c>; 0 picks a free one.</summary>
    public int MetricsPort { get; init; } = 8080;

    /// <summary>Port of <c>/healthz</c> and <c>/readyz</c>; 0 picks a free one.</summary>
    public int HealthPort { get; init; } = 8081;

    /// <summary>Address the two ports listen on.</summary>
    public IPAddress ListenAddress { get; init; } = IPAddress.Any;

    public int MaxConcurrentReconciles { get; init; } = 4;

    public TimeSpan ResyncPeriod { get; init; } = TimeSpan.FromMinutes(10);

    public ReconcilerOptions Reconciler { get; init; } = new();

    public LeaderElectionOptions ElectionTimings(string identity) => new()
    {
        Namespace = LeaseNamespace,
        LeaseName = LeaseName,
        Identity = identity,
    };
}

/// <summary>
/// The operator process: health and metrics endpoints, the leader Lease, and while leading the informers, the work
/// queue and the cluster reconciler. Only acts; every decision is in the planners.
/// </summary>
public sealed partial class OperatorHost(IKubeApiClient client, IInstanceClient instances, OperatorOptions options, ILoggerFactory logging, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ILogger _logger = logging.CreateLogger("operator");
    private volatile bool _synced;
    private volatile bool _leading;
    private Action? _phases;

    public OperatorMetrics Metrics { get; } = new();

    /// <summary>The reconciler of the current leadership term (null while not leading).</summary>
    public ClusterReconciler? Reconciler { get; private set; }

    /// <summary>The addresses of the metrics and health endpoints once started.</summary>
    public Uri? MetricsUrl { get; private set; }

    public Uri? HealthUrl { get; private set; }

    /// <summary>True while this replica leads (or leader election is off) and its caches are synced.</summary>
    public bool Leading => _synced;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await using var web = await StartEndpointsAsync(cancellationToken).ConfigureAwait(false);
        LogStarted(_logger, options.WatchNamespace ?? "(all namespaces)", options.LeaderElect, MetricsUrl!, HealthUrl!);
        if (!options.LeaderElect)
        {
            await LeadAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        var elector = new LeaderElector(client, options.ElectionTimings(options.Identity), _time, logging.CreateLogger("leader-election"));
        while (!cancellationToken.IsCancellationRequested)
        {
            // Every write of the reconciler checks the Lease by this replica's own clock first.
            await elector.RunAsync(
                leading => LeadAsync(new LeaseGuardedClient(client, () => elector.HoldsLease), new LeaseGuardedInstanceClient(instances, () => elector.HoldsLease), leading),
                cancellationToken).ConfigureAwait(false);
        }
    }

    private Task LeadAsync(CancellationToken cancellationToken) => LeadAsync(client, instances, cancellationToken);

    private async Task LeadAsync(IKubeApiClient client, IInstanceClient instances, CancellationToken cancellationToken)
    {
        Metrics.Leading(true);
        _leading = true;
        try
        {
            var owned = new OwnedObjects(client, options.WatchNamespace, logging);
            var recorder = new EventRecorder(client, "memorycluster.io/operator", options.Identity, _time);
            var reconciler = new ClusterReconciler(client, owned, instances, recorder, options.Reconciler, _time, logging.CreateLogger("reconciler"))
            {
                Observer = (_, writes) => Metrics.Wrote(writes),
            };
            Reconciler = reconciler;
            var clusters = new Informer<MemoryClusterResource>(client, ResourceTypes.MemoryCluster,
                new InformerOptions { Namespace = options.WatchNamespace }, _time, logging.CreateLogger("informer.memoryclusters"));
            var host = new ReconcilerHost<MemoryClusterResource>(clusters, new MeasuredReconciler(reconciler, Metrics, _time),
                new ReconcilerHostOptions { MaxConcurrentReconciles = options.MaxConcurrentReconciles, ResyncPeriod = options.ResyncPeriod },
                time: _time, logger: logging.CreateLogger("controller"));
            foreach (var kind in owned.All)
            {
                kind.OnOwnerChanged(host.Queue.Add);
            }

            _phases = () => Metrics.CountPhases(clusters.List());
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var caches = owned.RunAsync(stop.Token);
            try
            {
                // The owned caches first: a reconcile against an empty cache would apply what exists already.
                await owned.WaitForSyncAsync(stop.Token).ConfigureAwait(false);
                _synced = true;
                await host.RunAsync(stop.Token).ConfigureAwait(false);
            }
            finally
            {
                _synced = false;
                await stop.CancelAsync().ConfigureAwait(false);
                try
                {
                    await caches.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // The informers end by cancellation.
                }
            }
        }
        finally
        {
            Reconciler = null;
            _phases = null;
            _leading = false;
            Metrics.Leading(false);
        }
    }

    private async Task<WebApplication> StartEndpointsAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(options.ListenAddress, options.MetricsPort);
            if (options.HealthPort != options.MetricsPort || options.HealthPort == 0)
            {
                kestrel.Listen(options.ListenAddress, options.HealthPort);
            }
        });
        var app = builder.Build();
        app.MapGet("/healthz", () => Results.Text("ok\n"));

        // A replica waiting for the Lease is ready: it can take over at once. A leader is ready once its caches are synced.
        app.MapGet("/readyz", () => !_leading || _synced
            ? Results.Text(_synced ? "leading\n" : "standing by\n")
            : Results.Text("syncing caches\n", statusCode: 503));
        app.MapGet("/metrics", async (HttpResponse response, CancellationToken ct) =>
        {
            _phases?.Invoke();
            response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await Metrics.WriteAsync(response.Body, ct).ConfigureAwait(false);
        });
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var addresses = app.Urls.Select(u => new Uri(u.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal).Replace("[::]", "127.0.0.1", StringComparison.Ordinal))).ToList();
        MetricsUrl = addresses[0];
        HealthUrl = addresses[^1];
        return app;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "operator started: watching {Namespace}, leader election {LeaderElect}, metrics {Metrics}, health {Health}")]
    private static partial void LogStarted(ILogger logger, string @namespace, bool leaderElect, Uri metrics, Uri health);
}
