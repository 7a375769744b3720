using System.Diagnostics;
using MemoryCluster.Instance.Postgres;
using Microsoft.Extensions.Hosting;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// Reads PostgreSQL's statistics for the metrics every <see cref="Interval"/>, on its own loop with a short time limit,
/// so that neither a scrape nor a slow server ever holds up the node.
/// </summary>
internal sealed class PostgresMetricsCollector(PostgresSupervisor supervisor, PgClient client, InstanceMetrics metrics, TimeProvider time) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            do
            {
                if (supervisor.Running)
                {
                    await CollectAsync(stoppingToken).ConfigureAwait(false);
                }
                else
                {
                    metrics.Postgres.Up.Set(0);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One read (also used by the tests).</summary>
    public async Task CollectAsync(CancellationToken cancellationToken)
    {
        var pg = metrics.Postgres;
        var watch = Stopwatch.StartNew();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(Limit);
        try
        {
            var stats = await client.ReadStatsAsync(limit.Token).ConfigureAwait(false);
            PostgresMetrics.SetAll(pg.Backends, stats.BackendsByState);
            pg.Advance(pg.Commits, "commits", stats.Commits);
            pg.Advance(pg.Rollbacks, "rollbacks", stats.Rollbacks);
            pg.Advance(pg.Deadlocks, "deadlocks", stats.Deadlocks);
            PostgresMetrics.SetAll(pg.DatabaseSize, stats.DatabaseSizes);
            pg.Advance(pg.WalBytes, "wal", stats.WalBytes);
            pg.Advance(pg.CheckpointsTimed, "checkpoints_timed", stats.CheckpointsTimed);
            pg.Advance(pg.CheckpointsRequested, "checkpoints_requested", stats.CheckpointsRequested);
            pg.OldestTransaction.Set(stats.OldestTransactionSeconds);
            // One series per standby name: pg_basebackup streams with two walsenders of the same name.
            var standbys = stats.Standbys.GroupBy(s => s.Name, StringComparer.Ordinal).ToList();
            PostgresMetrics.SetAll(pg.ReplicationLagBytes, standbys.ToDictionary(g => g.Key, g => (double)g.Max(s => s.LagBytes), StringComparer.Ordinal));
            PostgresMetrics.SetAll(pg.ReplicationLagSeconds, standbys.Where(g => g.Any(s => s.LagSeconds is not null)).ToDictionary(g => g.Key, g => g.Max(s => s.LagSeconds ?? 0), StringComparer.Ordinal));
            pg.Up.Set(1);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or IOException or InvalidOperationException or InvalidCastException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            pg.Up.Set(0);
            pg.ReadErrors.Inc();
        }

        pg.ScrapeSeconds.Set(watch.Elapsed.TotalSeconds);
    }
}
