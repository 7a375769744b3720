using System.Diagnostics;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using Microsoft.Extensions.Hosting;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// Reads the running PostgreSQL's state (one pooled query plus the names of pg_wal's files) as often as the node
/// asks, and at once after every change the supervisor reports; runs the health probes the node asks for.
/// </summary>
internal sealed class PostgresObserver : BackgroundService
{
    /// <summary>A probe query must answer within this.</summary>
    public static readonly TimeSpan ProbeQueryTimeout = TimeSpan.FromSeconds(1);

    /// <summary>A write to the data volume pending longer than this means the volume is stalled.</summary>
    public static readonly TimeSpan DiskStall = TimeSpan.FromSeconds(2);

    /// <summary>How often a probe writes to the data volume (a stall shows as one write pending).</summary>
    private static readonly TimeSpan DiskWriteEvery = TimeSpan.FromSeconds(1);

    /// <summary>Every this many probes, the query goes over a new connection (the postmaster must still fork backends).</summary>
    private const int FreshConnectionEvery = 4;

    private readonly InstanceOptions _options;
    private readonly NodeDriver _driver;
    private readonly PostgresSupervisor _supervisor;
    private readonly PostgresFiles _files;
    private readonly PgClient _client;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _kick = new(0, 1);

    // One state query at a time, each handed to the node before the next begins: the loop's and a fresh report's
    // queries never answer out of order (an older answer after a newer one made a primary's flush position go back).
    private readonly SemaphoreSlim _queryGate = new(1, 1);
    private readonly Lock _diskGate = new();
    private Task? _diskWrite;
    private long _diskWriteStarted;
    private int _probes;

    public PostgresObserver(InstanceOptions options, NodeDriver driver, PostgresSupervisor supervisor, PostgresFiles files, PgClient client, TimeProvider time)
    {
        _options = options;
        _driver = driver;
        _supervisor = supervisor;
        _files = files;
        _client = client;
        _time = time;
        supervisor.Changed += Kick;
        driver.Quickened += Kick;
        driver.Handle<Node.Probe>(probe => _ = ProbeAsync());
    }

    /// <summary>Look again now.</summary>
    public void Kick()
    {
        try
        {
            _kick.Release();
        }
        catch (SemaphoreFullException)
        {
            // A look is already due.
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            if (_supervisor.Running)
            {
                await ObserveAsync(stoppingToken).ConfigureAwait(false);
            }

            var interval = TimeSpan.FromMilliseconds(_driver.Read((node, _) => node.ObserveIntervalMs));
            try
            {
                await _kick.WaitAsync(interval, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>Queries PostgreSQL's state now (for a report read fresh), within <paramref name="limit"/>; nothing when it is not running.</summary>
    public async Task ObserveNowAsync(TimeSpan limit, CancellationToken cancellationToken)
    {
        if (!_supervisor.Running)
        {
            return;
        }

        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(limit);
        try
        {
            await ObserveAsync(bounded.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Not within the limit: the report goes out with the last state, dated as it is.
        }
    }

    private async Task ObserveAsync(CancellationToken ct)
    {
        await _queryGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await QueryAndStepAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _queryGate.Release();
        }
    }

    private async Task QueryAndStepAsync(CancellationToken ct)
    {
        PgObservation? observation = null;
        string? error = null;
        var started = _driver.NowMs;
        try
        {
            // IMPORTANT: the positions and the timeline they are on must come from one moment. A promotion writes the
            // new timeline's history file while pg_is_in_recovery() is still true: read after the query, it paired
            // the old timeline's received position (a partial record's bytes included) with the new timeline, and
            // the report then went back on that timeline once the promotion ended (e2e, replica-crash-then-primary-
            // crash). The timeline is read before and after the query; the query is repeated when it changed.
            var (dataTimeline, histories) = _files.ReadTimelines();
            var state = await _client.GetStateAsync(ct).ConfigureAwait(false);
            for (var attempt = 0; _files.ReadTimelines() is var after && after.DataTimeline != dataTimeline; attempt++)
            {
                if (attempt == 2)
                {
                    throw new InvalidOperationException($"the data's timeline kept changing during the state query (now {after.DataTimeline})");
                }

                (dataTimeline, histories) = after;
                state = await _client.GetStateAsync(ct).ConfigureAwait(false);
            }

            if (!state.InRecovery && state.Timeline > dataTimeline)
            {
                // Promoted during the query, before its new timeline's first segment was in pg_wal: its history file
                // is (PostgreSQL writes it first), read again. Reported without it, the line named no ancestors and
                // the replicas took the new primary's line for another branch than theirs and stopped to rewind (e2e).
                histories = _files.ReadTimelines().Histories;
                if (!histories.ContainsKey(state.Timeline))
                {
                    throw new InvalidOperationException($"promoted onto timeline {state.Timeline}, whose history file is not in pg_wal yet");
                }

                dataTimeline = state.Timeline;
            }

            observation = new PgObservation(state.InRecovery, dataTimeline, state.WriteLsn, state.FlushLsn, state.ReceiveLsn, state.ReplayLsn, state.Receiver, state.ReceiverSource, state.Standbys, histories, state.ReceiptAgeSeconds, state.Sync);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or IOException or InvalidOperationException or InvalidCastException or FormatException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            error = $"{e.GetType().Name}: {e.Message}";
        }

        _driver.Step(now => new PostgresObserved(now, observation, error, started));
    }

    /// <summary>
    /// The health probe: PostgreSQL answers a query within a second (over a new connection every few probes), its
    /// postmaster is not stopped, and a small write to the data volume is not stuck.
    /// </summary>
    private async Task ProbeAsync()
    {
        var (healthy, inRecovery, why) = await RunProbeAsync().ConfigureAwait(false);
        _driver.Step(now => new ProbeDone(now, healthy, inRecovery, why));
    }

    private async Task<(bool Healthy, bool? InRecovery, string? Why)> RunProbeAsync()
    {
        var postmaster = _supervisor.Postgres;
        if (postmaster is null || postmaster.HasExited)
        {
            return (false, null, "postgres is not running");
        }

        if (PostmasterStopped(postmaster.Pid))
        {
            return (false, null, $"the postmaster (pid {postmaster.Pid}) is stopped");
        }

        bool inRecovery;
        try
        {
            var fresh = ++_probes % FreshConnectionEvery == 0;
            inRecovery = await _client.InRecoveryAsync(ProbeQueryTimeout, fresh, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Npgsql.PostgresException e) when (e.SqlState == Npgsql.PostgresErrorCodes.CannotConnectNow)
        {
            // Starting up or shutting down: alive, and not accepting writes at this moment.
            return (true, null, null);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or IOException or InvalidOperationException)
        {
            return (false, null, $"query: {e.Message}");
        }

        return DiskStuck() is { } stuck ? (false, inRecovery, stuck) : (true, inRecovery, null);
    }

    /// <summary>Starts a small flushed write to the data volume unless one is pending; says so when one has been pending too long.</summary>
    private string? DiskStuck()
    {
        lock (_diskGate)
        {
            if (_diskWrite is { IsCompleted: false })
            {
                var pending = _time.GetElapsedTime(_diskWriteStarted);
                return pending > DiskStall ? $"a write to the data volume has been pending for {pending.TotalSeconds:0.0} s" : null;
            }

            if (_diskWrite is { IsFaulted: true } failed)
            {
                _diskWrite = null;
                return $"writing to the data volume failed: {failed.Exception?.InnerException?.Message}";
            }

            if (_diskWrite is not null && _time.GetElapsedTime(_diskWriteStarted) < DiskWriteEvery)
            {
                // One flushed write a second is enough to see a stalled volume.
                return null;
            }

            _diskWriteStarted = _time.GetTimestamp();
            var path = Path.Combine(_options.DataRoot, "probe");
            _diskWrite = Task.Run(() =>
            {
                using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.WriteThrough);
                file.Write(BitConverter.GetBytes(Stopwatch.GetTimestamp()));
                file.Flush(flushToDisk: true);
            });
            return null;
        }
    }

    /// <summary>Whether the process is stopped (SIGSTOP): state T in /proc/PID/stat.</summary>
    private static bool PostmasterStopped(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] is 'T' or 't';
        }
        catch (IOException)
        {
            return false;
        }
    }

    public override void Dispose()
    {
        _kick.Dispose();
        base.Dispose();
    }
}
