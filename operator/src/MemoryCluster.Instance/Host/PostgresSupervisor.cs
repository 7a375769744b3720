using System.Diagnostics;
using System.Threading.Channels;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// Carries out the node's PostgreSQL actions, one at a time, and its fences at once; supervises the postmaster (its
/// own child, reaped here) and reports its exit. A fence cancels the action in flight, and the two never overlap
/// where it matters: starting or promoting takes the same gate as the kill, checks that no fence came since the
/// action was issued and that the lease still covers it, and only then starts or signals PostgreSQL.
/// </summary>
internal sealed partial class PostgresSupervisor : BackgroundService
{
    private readonly InstanceOptions _options;
    private readonly NodeDriver _driver;
    private readonly PostgresFiles _files;
    private readonly PgClient _client;
    private readonly PgTools _tools;
    private readonly ILogger _logger;
    private readonly Channel<PostgresAction> _actions = Channel.CreateUnbounded<PostgresAction>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Lock _current = new();
    private CancellationTokenSource? _actionCancel;
    private long _actionId;
    private string? _abandoned;
    private PostgresProcess? _postgres;
    private long _fences;

    public PostgresSupervisor(InstanceOptions options, NodeDriver driver, PostgresFiles files, PgClient client, PgTools tools, ILogger<PostgresSupervisor> logger)
    {
        _options = options;
        _driver = driver;
        _files = files;
        _client = client;
        _tools = tools;
        _logger = logger;
        driver.Handle<PostgresAction>(a => _actions.Writer.TryWrite(a));
        driver.Handle<Fence>(f => _ = FenceAsync(f));
        driver.Handle<AbandonAction>(Abandon);
    }

    /// <summary>Raised after every action and every start, so the observer looks again at once.</summary>
    public event Action? Changed;

    /// <summary>The running postmaster, if any.</summary>
    public PostgresProcess? Postgres => _postgres;

    public bool Running => _postgres is { HasExited: false };

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_postgres is { } postgres)
        {
            // A manager that stops shuts PostgreSQL down cleanly.
            await postgres.StopAsync(ShutdownMode.Fast, TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(false);
            await postgres.DisposeAsync().ConfigureAwait(false);
        }

        _gate.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var action in _actions.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                await RunAsync(action, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task RunAsync(PostgresAction action, CancellationToken stoppingToken)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        lock (_current)
        {
            _actionCancel = cancel;
            _actionId = action.Id;
            _abandoned = null;
        }

        var fencesBefore = Interlocked.Read(ref _fences);
        Outcome outcome;
        string? error = null;
        Lsn? finalLsn = null;
        try
        {
            finalLsn = await ExecuteAsync(action, fencesBefore, cancel.Token).ConfigureAwait(false);
            outcome = Outcome.Done;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            outcome = Outcome.Failed;
            error = e is OperationCanceledException ? "cancelled by a fence" : $"{e.GetType().Name}: {e.Message}";
        }
        finally
        {
            lock (_current)
            {
                _actionCancel = null;
                _actionId = 0;
                if (_abandoned is { } why)
                {
                    outcome = Outcome.Failed;
                    error = $"abandoned: {why}";
                }
            }
        }

        var data = PostgresFiles.DataKindOf(_options.DataDirectory);
        _driver.Step(now => new ActionDone(now, action.Id, outcome, error, data, finalLsn));
        Changed?.Invoke();
    }

    private async Task<Lsn?> ExecuteAsync(PostgresAction action, long fencesBefore, CancellationToken ct)
    {
        switch (action)
        {
            case PostgresAction.InitDb:
                _files.EnsureDataDirectory();
                await _tools.InitDbAsync(_options.DataDirectory, ct).ConfigureAwait(false);
                return null;
            case PostgresAction.CloneFrom clone:
                await CloneAsync(clone.From, ct).ConfigureAwait(false);
                return null;
            case PostgresAction.StartPrimary start:
                await StartAsync(MemberId.None, asPrimary: true, start.NotAfter, fencesBefore, ct).ConfigureAwait(false);
                return null;
            case PostgresAction.StartStandby start:
                await StartAsync(start.Upstream, asPrimary: false, null, fencesBefore, ct).ConfigureAwait(false);
                return null;
            case PostgresAction.Promote promote:
                await PromoteAsync(promote.NotAfter, promote.Epoch, fencesBefore, ct).ConfigureAwait(false);
                return null;
            case PostgresAction.Stop stop:
                if (stop.ForSwitchover)
                {
                    // A checkpoint while writes go on leaves little for the shutdown checkpoint to write: the time
                    // during which no one takes writes is shorter.
                    await _client.CheckpointAsync(ct).ConfigureAwait(false);
                }

                await StopPostgresAsync(ct).ConfigureAwait(false);
                if (stop.ForSwitchover)
                {
                    var control = await _tools.ControlDataAsync(_options.DataDirectory, ct).ConfigureAwait(false);
                    return Lsn.Parse(control["Latest checkpoint location"]);
                }

                return null;
            case PostgresAction.Rewind rewind:
                await _tools.RewindAsync(_options.DataDirectory, _files.SourceFor(rewind.From).ConnInfo + " dbname=postgres", ct).ConfigureAwait(false);
                _files.WriteConfig(rewind.From, standby: true);
                return null;
            case PostgresAction.Reclone reclone:
                var aside = _files.MoveAside(reclone.Reinit ? "reinit" : "diverged");
                Log.KeptAside(_logger, aside);
                await CloneAsync(reclone.From, ct).ConfigureAwait(false);
                return null;
            case PostgresAction.Repoint repoint:
                _files.WriteConfig(repoint.Upstream, standby: true);
                await _client.ReloadAsync(ct).ConfigureAwait(false);
                return null;
            case PostgresAction.EnsureSlots:
                var slotsStarted = Stopwatch.GetTimestamp();
                await _files.EnsureSlotsAsync(_client, ct).ConfigureAwait(false);
                Log.Slots(_logger, (long)Stopwatch.GetElapsedTime(slotsStarted).TotalMilliseconds);
                return null;
            case PostgresAction.EnsurePrimaryObjects:
                var started = Stopwatch.GetTimestamp();
                await _files.EnsurePrimaryObjectsAsync(_client, ct).ConfigureAwait(false);

                // The membership may have changed since the start or promotion: the synchronous standbys (and k) follow it.
                _files.WriteConfig(MemberId.None, standby: false);
                await _client.ReloadAsync(ct).ConfigureAwait(false);
                Log.PrimaryObjects(_logger, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                return null;
            default:
                throw new InvalidOperationException($"no executor for {action.GetType().Name}");
        }
    }

    private async Task CloneAsync(MemberId from, CancellationToken ct)
    {
        _files.EmptyDataDirectory();
        await _tools.BaseBackupAsync(_options.DataDirectory, _files.SourceFor(from), ct).ConfigureAwait(false);
        _files.WriteConfig(from, standby: true);
    }

    private async Task StartAsync(MemberId upstream, bool asPrimary, long? notAfter, long fencesBefore, CancellationToken ct)
    {
        await ReapAsync().ConfigureAwait(false);

        // A postmaster that crashed can leave backends behind; they hold no lease (this one is not primary yet, or
        // the node fenced already) and would block the start.
        await ProcessFence.KillAllAsync(_options.DataDirectory, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
        _files.RemoveStaleTimelinePlaceholders();
        if (!asPrimary)
        {
            _files.RemoveReplicationSlots();
        }

        _files.WriteConfig(upstream, standby: !asPrimary);
        _client.ResetPool();
        PostgresProcess process;
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // IMPORTANT: under the fence's gate, right before the process starts: no fence since the node asked, and
            // the lease still covers this instant. A pause after this point is covered by the watchdog, armed first.
            Authorize(notAfter, fencesBefore, ct);
            process = PostgresProcess.Start(_files.Binaries, _options.DataDirectory, _logger, OnPostgresLine);
            _postgres = process;
        }
        finally
        {
            _gate.Release();
        }

        _ = WatchExitAsync(process);
        Changed?.Invoke();
        await _client.WaitReadyAsync(TimeSpan.FromSeconds(60), ct, process.Exited).ConfigureAwait(false);
    }

    private async Task PromoteAsync(long notAfter, Epoch epoch, long fencesBefore, CancellationToken ct)
    {
        // The new timeline's id is the epoch (see PostgresAction.Promote).
        _files.WriteTimelinePlaceholders(epoch);
        var signalled = false;
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // IMPORTANT: as for a start: no fence since, and the lease covers the signal; pg_promote(wait => false)
            // only signals, so the gate is held for milliseconds.
            Authorize(notAfter, fencesBefore, ct);
            await _client.SignalPromoteAsync(ct).ConfigureAwait(false);
            signalled = true;
        }
        finally
        {
            _gate.Release();
            if (!signalled)
            {
                // No promotion: placeholders left as the newest timelines would be PostgreSQL's recovery target at its
                // next start, which it would refuse.
                _files.RemoveStaleTimelinePlaceholders();
            }
        }

        await _client.WaitOutOfRecoveryAsync(TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
        _files.WriteConfig(MemberId.None, standby: false);
        await _client.ReloadAsync(ct).ConfigureAwait(false);

        // Without a checkpoint pg_control keeps the old timeline until the next scheduled one, and a pg_rewind
        // against this server would decide "no rewind required" and leave the old primary unable to follow.
        await _client.CheckpointAsync(ct).ConfigureAwait(false);
    }

    private void Authorize(long? notAfter, long fencesBefore, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (Interlocked.Read(ref _fences) != fencesBefore)
        {
            throw new InvalidOperationException("a fence came after the node asked for this; not starting");
        }

        if (notAfter is { } limit && _driver.NowMs >= limit)
        {
            throw new InvalidOperationException($"the primary lease ran out before this could begin ({_driver.NowMs - limit} ms late)");
        }
    }

    private async Task StopPostgresAsync(CancellationToken ct)
    {
        if (_postgres is not { } postgres)
        {
            return;
        }

        await postgres.StopAsync(ShutdownMode.Fast, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        await ReapAsync().ConfigureAwait(false);
    }

    /// <summary>Waits for the last postmaster to be reaped (a killed one can linger a moment and hold postmaster.pid).</summary>
    private async Task ReapAsync()
    {
        if (_postgres is { } old)
        {
            await ((Task)old.Exited).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (old.HasExited)
            {
                await old.DisposeAsync().ConfigureAwait(false);
                _postgres = null;
                _client.ResetPool();
            }
        }
    }

    private async Task WatchExitAsync(PostgresProcess process)
    {
        var code = await process.Exited.ConfigureAwait(false);
        _client.ResetPool();
        _driver.Step(now => new PostgresExited(now, code));
        Changed?.Invoke();
    }

    private void Abandon(AbandonAction abandon)
    {
        lock (_current)
        {
            if (_actionId == abandon.ActionId && _actionCancel is { } cancel)
            {
                // Called while the driver steps the node: the action's own continuations run elsewhere.
                _abandoned = abandon.Why;
                _ = cancel.CancelAsync();
            }
        }
    }

    /// <summary>SIGKILL to every process in the data directory; records the fence before it reports it done.</summary>
    private async Task FenceAsync(Fence fence)
    {
        Outcome outcome;
        string? error = null;
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            Interlocked.Increment(ref _fences);
            lock (_current)
            {
                _actionCancel?.Cancel();
            }

            var done = await ProcessFence.KillAllAsync(_options.DataDirectory, _options.Lease.StopBudget, CancellationToken.None).ConfigureAwait(false);
            if (done && fence.Record != Epoch.Zero)
            {
                // IMPORTANT: recorded before it is reported: a manager restarted after this never runs PostgreSQL as
                // primary again at this epoch.
                _files.RecordFence(fence.Record, fence.Why);
            }

            outcome = done ? Outcome.Done : Outcome.Failed;
            error = done ? null : $"processes survived SIGKILL in {_options.DataDirectory} for {_options.Lease.StopBudget.TotalMilliseconds} ms";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            outcome = Outcome.Failed;
            error = $"{e.GetType().Name}: {e.Message}";
        }
        finally
        {
            _gate.Release();
        }

        _driver.Step(now => new FenceDone(now, fence.Id, outcome, error, PostgresFiles.DataKindOf(_options.DataDirectory)));
        Changed?.Invoke();
    }

    private void OnPostgresLine(string line)
    {
        if (TimelineRefused.IsRefusal(line))
        {
            _driver.Step(now => new TimelineRefused(now, line));
        }
    }

    private static partial class Log
    {
        [LoggerMessage(120, LogLevel.Warning, "the old data is kept at {Path}")]
        public static partial void KeptAside(ILogger logger, string path);

        [LoggerMessage(121, LogLevel.Information, "primary objects in place, synchronous standbys configured: {Milliseconds} ms")]
        public static partial void PrimaryObjects(ILogger logger, long milliseconds);

        [LoggerMessage(122, LogLevel.Information, "replication slots in place: {Milliseconds} ms")]
        public static partial void Slots(ILogger logger, long milliseconds);
    }

}
