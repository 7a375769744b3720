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

    /// <summary>Where the local snapshot of the model lives (null: none is kept); see <see cref="MemorySnapshot"/>.</summary>
    public string? SnapshotDirectory { get; init; }

    /// <summary>How often a new snapshot is written while commits arrive (one is also written at a clean shutdown).</summary>
    public TimeSpan SnapshotEvery { get; init; } = TimeSpan.FromMinutes(5);
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
    private long _snapshotLoads;
    private long _snapshotSaves;
    private long _snapshotRejected;
    private long _snapshotSeq = -1;

    // The model holds exactly the database's rows at its position, on this database's history: a snapshot may be
    // written. False from the start of a load until a read of the feed checked the position, and after a failed apply.
    private volatile bool _consistent;
    private long _snapshotAt = TimeProvider.System.GetTimestamp();
    private Task _saving = Task.CompletedTask;

    public FollowerPhase Phase { get; private set; } = FollowerPhase.Loading;

    /// <summary>True once loaded and, at the last read, at the head of the feed.</summary>
    public bool CaughtUp => Volatile.Read(ref _caughtUpAt) >= 0 && Phase == FollowerPhase.Following;

    /// <summary>Full loads done (the first one included).</summary>
    public long Loads => Interlocked.Read(ref _loads);

    /// <summary>Times the connection to the feed was lost and made again.</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    /// <summary>Whether a local snapshot is kept.</summary>
    public bool SnapshotsEnabled => options.SnapshotDirectory is not null;

    /// <summary>Starts served from the local snapshot instead of a full load.</summary>
    public long SnapshotLoads => Interlocked.Read(ref _snapshotLoads);

    /// <summary>Snapshots written.</summary>
    public long SnapshotSaves => Interlocked.Read(ref _snapshotSaves);

    /// <summary>Snapshots found unusable (damaged, another format, or a position the database's history does not hold).</summary>
    public long SnapshotRejected => Interlocked.Read(ref _snapshotRejected);

    /// <summary>The feed commit of the last snapshot written or read (-1: none).</summary>
    public long SnapshotSeq => Interlocked.Read(ref _snapshotSeq);

    /// <summary>Why the last attempt failed, while it is failing.</summary>
    public string? LastError { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var loaded = LoadSnapshot();
        var fromSnapshot = loaded;
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
                    if (fromSnapshot)
                    {
                        // IMPORTANT: a snapshot is used only on a position the database's history holds.
                        Interlocked.Increment(ref _snapshotRejected);
                        LogSnapshotStale(logger, model.Position.Seq, diverged.Reason);
                    }
                    else
                    {
                        LogDiverged(logger, diverged.Reason);
                    }

                    fromSnapshot = false;
                    loaded = false;
                    continue;
                }

                fromSnapshot = false;
                _consistent = true;

                await FollowAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (StoreException e) when (e.InnerException is FeedDivergedException diverged)
            {
                LogDiverged(logger, diverged.Message);
                _consistent = false;
                loaded = false;
                continue;
            }
            catch (Exception e)
            {
                // A change the model could not apply leaves it half-applied: load everything again.
                if (e is InvalidOperationException or ArgumentException or FormatException)
                {
                    _consistent = false;
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

    /// <summary>After the feed has stopped: writes a last snapshot, when the model holds a checked state not yet saved.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await _saving.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (SnapshotDue)
        {
            SaveSnapshot();
        }
    }

    // Reads the local snapshot into the model, if there is a usable one; its position is checked by the caller next.
    private bool LoadSnapshot()
    {
        if (options.SnapshotDirectory is not { } directory)
        {
            return false;
        }

        var started = TimeProvider.System.GetTimestamp();
        long triples = 0;
        var vectors = 0;
        model.BeginLoad();
        try
        {
            var header = MemorySnapshot.Read(directory, model.LoadNode, row =>
            {
                model.LoadTriple(row);
                triples++;
            }, (name, dimensions, index) =>
            {
                model.LoadSpace(name, dimensions, index);
                vectors += index.Count;
            });
            if (header is not { Position: { Seq: > 0 } at })
            {
                // None, or taken before the first commit: nothing to gain over a load.
                model.AbandonLoad();
                return false;
            }

            model.FinishLoad(header);
            Interlocked.Increment(ref _snapshotLoads);
            Interlocked.Exchange(ref _snapshotSeq, at.Seq);
            LogSnapshotLoaded(logger, triples, vectors, at.Seq, TimeProvider.System.GetElapsedTime(started).TotalSeconds);
            return true;
        }
        catch (Exception e) when (e is MemorySnapshotException or IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
        {
            // IMPORTANT: a snapshot that cannot be read whole is never served: set aside, and everything loaded from PostgreSQL.
            model.AbandonLoad();
            Interlocked.Increment(ref _snapshotRejected);
            LogSnapshotUnusable(logger, e.Message);
            try
            {
                MemorySnapshot.SetAside(directory);
            }
            catch (IOException)
            {
                // Left where it is: the next start finds it unusable again.
            }

            return false;
        }
    }

    // A snapshot is kept, the model holds a checked state past commit 0, and that state is not the last one saved.
    private bool SnapshotDue => options.SnapshotDirectory is not null && _consistent && model.Position.Seq > 0 && model.Position.Seq != SnapshotSeq;

    // Every SnapshotEvery while following, on a thread of its own: the copy takes the read lock, the write none.
    private void MaybeSaveSnapshot()
    {
        if (!SnapshotDue || !_saving.IsCompleted || TimeProvider.System.GetElapsedTime(Interlocked.Read(ref _snapshotAt)) < options.SnapshotEvery)
        {
            return;
        }

        Interlocked.Exchange(ref _snapshotAt, TimeProvider.System.GetTimestamp());
        _saving = Task.Run(SaveSnapshot);
    }

    private void SaveSnapshot()
    {
        try
        {
            var started = TimeProvider.System.GetTimestamp();
            var contents = model.Capture();
            MemorySnapshot.Write(options.SnapshotDirectory!, contents);
            Interlocked.Increment(ref _snapshotSaves);
            Interlocked.Exchange(ref _snapshotSeq, contents.Position.Seq);
            LogSnapshotSaved(logger, contents.Triples.Count, contents.Spaces.Count, contents.Position.Seq, TimeProvider.System.GetElapsedTime(started).TotalSeconds);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogSnapshotFailed(logger, e.Message);
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
        _consistent = false;
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
            _consistent = true;
            MaybeSaveSnapshot();
            if (Volatile.Read(ref woken) == 0)
            {
                // Returns on a notification or at the poll interval; a broken connection throws here.
                await listener.WaitAsync(options.PollInterval, ct).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "read {Triples} triples and {Embeddings} embeddings at feed commit {Seq} from the local snapshot in {Seconds:0.00} s; checking the position against the database's feed")]
    private static partial void LogSnapshotLoaded(ILogger logger, long triples, long embeddings, long seq, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the local snapshot cannot be used ({Error}): set aside; loading from PostgreSQL")]
    private static partial void LogSnapshotUnusable(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the local snapshot at feed commit {Seq} is not on the database's history ({Reason}): loading from PostgreSQL")]
    private static partial void LogSnapshotStale(ILogger logger, long seq, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "wrote the local snapshot: {Triples} triples and {Models} embedding models' indexes at feed commit {Seq} in {Seconds:0.00} s")]
    private static partial void LogSnapshotSaved(ILogger logger, long triples, long models, long seq, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "writing the local snapshot failed: {Error}; the previous one (if any) stays")]
    private static partial void LogSnapshotFailed(ILogger logger, string error);

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
