using MemoryCluster.Compute.Memory;
using MemoryCluster.Compute.Store;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace MemoryCluster.Compute.Feed;

/// <summary>How the follower reads the feed.</summary>
public sealed record FeedOptions
{
    /// <summary>How long it waits for a notification before it reads anyway (the fallback when one is lost).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Commits per read.</summary>
    public int BatchCommits { get; init; } = 500;

    /// <summary>Longest wait between attempts to reach a database that does not answer.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long commits stay in the feed: a process that falls further behind (or is down longer) loads again.</summary>
    public TimeSpan Retention { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How often a follower prunes what is older than <see cref="Retention"/> (any process may; it is idempotent).</summary>
    public TimeSpan PruneEvery { get; init; } = TimeSpan.FromMinutes(10);
}

/// <summary>What the follower is doing, for /status, /readyz and metrics.</summary>
public enum FollowerPhase
{
    Unknown = 0,
    Loading,
    Following,
    Reconnecting,
}

/// <summary>
/// Keeps the model equal to PostgreSQL: a bulk load (from the read-only endpoint when there is one), then every
/// commit after the load's position, woken by NOTIFY and reading anyway every poll interval. After any
/// connection failure (a failover among them) it reconnects through the multi-host connection string and first
/// checks that the last commit it applied is still in the database's history; when it is not, it loads again.
/// </summary>
public sealed partial class FeedFollower(MemoryModel model, Database readWrite, Database? readOnly, FeedOptions options, ILogger<FeedFollower> logger) : BackgroundService
{
    private long _caughtUpAt = -1;
    private long _loads;
    private long _reconnects;

    public FollowerPhase Phase { get; private set; } = FollowerPhase.Loading;

    /// <summary>True once loaded and, at the last read, at the head of the feed.</summary>
    public bool CaughtUp => Volatile.Read(ref _caughtUpAt) >= 0 && Phase == FollowerPhase.Following;

    /// <summary>Full loads done (the first one included).</summary>
    public long Loads => Interlocked.Read(ref _loads);

    /// <summary>Times the connection to the feed was lost and made again.</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    /// <summary>Why the last attempt failed, while it is failing.</summary>
    public string? LastError { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var loaded = false;
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!loaded)
                {
                    Phase = FollowerPhase.Loading;
                    await LoadAsync(stoppingToken).ConfigureAwait(false);
                    loaded = true;
                }

                if (await FeedReader.CheckAsync(readWrite, model.Position, stoppingToken).ConfigureAwait(false) is FeedVerdict.Diverged diverged)
                {
                    LogDiverged(logger, diverged.Reason);
                    loaded = false;
                    continue;
                }

                await FollowAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (StoreException e) when (e.InnerException is FeedDivergedException diverged)
            {
                LogDiverged(logger, diverged.Message);
                loaded = false;
                continue;
            }
            catch (Exception e)
            {
                // A change the model could not apply leaves it half-applied: load everything again.
                if (e is InvalidOperationException or ArgumentException or FormatException)
                {
                    loaded = false;
                }

                LastError = e.Message;
                Volatile.Write(ref _caughtUpAt, -1);
                Phase = loaded ? FollowerPhase.Reconnecting : FollowerPhase.Loading;
                Interlocked.Increment(ref _reconnects);
                LogFailed(logger, e.Message, backoff.TotalMilliseconds);
                await Task.Delay(backoff, stoppingToken).ConfigureAwait(false);
                backoff = TimeSpan.FromMilliseconds(Math.Min(options.MaxBackoff.TotalMilliseconds, backoff.TotalMilliseconds * 2));
                continue;
            }

            backoff = TimeSpan.FromMilliseconds(100);
        }
    }

    private async Task LoadAsync(CancellationToken ct)
    {
        if (readOnly is not null)
        {
            try
            {
                await LoadFromAsync(readOnly, ct).ConfigureAwait(false);
                return;
            }
            catch (StoreException e)
            {
                // No replica answers (all down, or none yet): the primary serves the load instead.
                LogReplicaUnavailable(logger, e.Message);
            }
        }

        await LoadFromAsync(readWrite, ct).ConfigureAwait(false);
    }

    private async Task LoadFromAsync(Database source, CancellationToken ct)
    {
        LogLoading(logger, source.Options.Name);
        var started = TimeProvider.System.GetTimestamp();
        model.BeginLoad();
        long triples = 0;
        long vectors = 0;
        var position = await FeedReader.LoadAsync(source, row =>
        {
            model.LoadTriple(row);
            if (++triples % 250_000 == 0)
            {
                LogProgress(logger, triples, "triples");
            }
        }, row =>
        {
            model.LoadEmbedding(row);
            if (++vectors % 50_000 == 0)
            {
                LogProgress(logger, vectors, "embeddings");
            }
        }, ct).ConfigureAwait(false);
        var read = TimeProvider.System.GetElapsedTime(started).TotalSeconds;
        model.FinishLoad(position);
        Interlocked.Increment(ref _loads);
        var total = TimeProvider.System.GetElapsedTime(started).TotalSeconds;
        LogLoaded(logger, triples, vectors, position.Seq, total, read, total - read);
    }

    private async Task FollowAsync(CancellationToken ct)
    {
        // A connection of its own for LISTEN: it is held for as long as the feed is followed.
        var builder = new NpgsqlConnectionStringBuilder(readWrite.Options.ConnectionString) { Pooling = false, KeepAlive = 5, ApplicationName = "memorycluster-compute-feed" };
        await using var listener = new NpgsqlConnection(builder.ConnectionString);
        await listener.OpenAsync(ct).ConfigureAwait(false);
        var woken = 0;
        listener.Notification += (_, _) => Interlocked.Exchange(ref woken, 1);
        await using (var listen = new NpgsqlCommand("listen memorycluster_feed", listener))
        {
            await listen.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        Phase = FollowerPhase.Following;
        LastError = null;
        var pruned = TimeProvider.System.GetTimestamp();
        while (true)
        {
            if (TimeProvider.System.GetElapsedTime(pruned) >= options.PruneEvery)
            {
                pruned = TimeProvider.System.GetTimestamp();
                var gone = await FeedReader.PruneAsync(readWrite, options.Retention, ct).ConfigureAwait(false);
                if (gone > 0)
                {
                    LogPruned(logger, gone, options.Retention.TotalMinutes);
                }
            }

            // Read until the head: a notification that arrives meanwhile is kept for the next round.
            Interlocked.Exchange(ref woken, 0);
            while (true)
            {
                var batch = await FeedReader.ReadAsync(readWrite, model.Position, options.BatchCommits, ct).ConfigureAwait(false);
                model.Apply(batch);
                if (batch.Count < options.BatchCommits)
                {
                    break;
                }
            }

            Volatile.Write(ref _caughtUpAt, model.Position.Seq);
            if (Volatile.Read(ref woken) == 0)
            {
                // Returns on a notification or at the poll interval; a broken connection throws here.
                await listener.WaitAsync(options.PollInterval, ct).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "pruned {Commits} feed commits older than {Minutes:0} minutes")]
    private static partial void LogPruned(ILogger logger, long commits, double minutes);

    [LoggerMessage(Level = LogLevel.Information, Message = "loading every triple and embedding from the {Endpoint} database")]
    private static partial void LogLoading(ILogger logger, string endpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the read-only endpoint cannot serve the load ({Error}): loading from the primary")]
    private static partial void LogReplicaUnavailable(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "loaded {Count} {What} so far")]
    private static partial void LogProgress(ILogger logger, long count, string what);

    [LoggerMessage(Level = LogLevel.Information, Message = "loaded {Triples} triples and {Embeddings} embeddings at feed commit {Seq} in {Seconds:0.00} s ({Read:0.00} s reading and building the graph, {Indexed:0.00} s indexing vectors)")]
    private static partial void LogLoaded(ILogger logger, long triples, long embeddings, long seq, double seconds, double read, double indexed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the feed diverged from what this process holds: {Reason}; loading everything again")]
    private static partial void LogDiverged(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "following the feed failed: {Error}; trying again in {DelayMs} ms")]
    private static partial void LogFailed(ILogger logger, string error, double delayMs);
}
