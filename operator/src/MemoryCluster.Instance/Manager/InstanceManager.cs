using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MemoryCluster.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Postgres;
using MemoryCluster.Raft;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Manager;

/// <summary>
/// The instance manager: one Raft voter, the supervisor of one PostgreSQL, and the executor of
/// <see cref="InstancePlanner"/>'s decisions. Each round it observes, asks the planner for the next step and
/// carries that one step out.
/// </summary>
public sealed partial class InstanceManager : IAsyncDisposable
{
    private const string ReplicationUser = "replicator";
    private const string AppUser = "app";

    private readonly InstanceOptions _options;
    private readonly ILogger _logger;
    private readonly IPodRoleLabeler _labeler;
    private readonly TimeProvider _time;
    private readonly PgBinaries _binaries;
    private readonly PgTools _tools;
    private readonly PgClient _client;
    private readonly byte[] _clusterKey;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromMilliseconds(800) };
    private readonly ConcurrentDictionary<ulong, PeerView> _peers = new();
    private RaftHost<ControlState>? _raft;
    private PostgresProcess? _postgres;
    private PgState? _pgState;
    private ulong _configuredUpstream;
    private bool _primaryObjectsReady;
    private bool _rewindFailed;
    private SwitchoverProgress? _switchover;
    private ulong _lastEpoch;
    private volatile string _activity = "starting";
    private volatile string? _lastError;
    private DateTimeOffset? _lastErrorAt;
    private string _labelledRole = string.Empty;
    private long _pgStateAtMs;

    // The primary lease, on the primary's side: the send time of the last granted renewal, and for which epoch.
    private readonly LeaseTimings _lease;
    private readonly long _startedAtMs;
    private readonly Lock _leaseLock = new();
    private readonly SemaphoreSlim _fenceGate = new(1, 1);
    private readonly HttpClient _leaseHttp;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly SemaphoreSlim _leaseWake = new(0, int.MaxValue);
    private static readonly Task Never = new TaskCompletionSource().Task;
    private long _failoverLoggedAtMs;
    private long _lastHandOverMs = long.MinValue / 2;
    private ulong _leaseEpoch;
    private long _leaseSentMs;
    private long _leaseSentTimestamp;
    private PostgresProcess? _stoppedOnPurpose;
    private PostgresProcess? _exitHandled;
    private volatile bool _probePending;
    private volatile bool _maybePrimary;
    private volatile bool _starting;
    private volatile bool _waiting;
    private string? _renewalNote = string.Empty;
    private ulong _fencedEpoch;
    private string? _fenceReason;
    private long? _watchdogArmed;
    private bool _watchdogWritten;
    private System.Diagnostics.Process? _watchdog;

    // The Raft leader's side: grants, when it became leader, when it saw the epoch, the primary's fence report.
    private ulong _grantEpoch;
    private long _grantMs;
    private ulong _leaderTerm;
    private long _leaderSinceMs = -1;
    private ulong _epochSeen;
    private long _epochSeenMs;
    private ulong _fencedSeenEpoch;
    private long _fencedSeenMs;
    private ulong _noGrantEpoch;
    private volatile string? _failoverNote;

    public InstanceManager(InstanceOptions options, ILoggerFactory loggers, IPodRoleLabeler labeler, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        _options = options;
        _logger = loggers.CreateLogger("memorycluster.instance." + options.Name);
        _labeler = labeler;
        _time = time ?? TimeProvider.System;
        _binaries = PgBinaries.Locate(options.PgBinDir, options.RunAsUser);
        _tools = new PgTools(_binaries);
        _client = new PgClient(options.SocketDirectory, options.Self.PgPort);
        _clusterKey = File.ReadAllBytes(options.ClusterKeyFile);
        _lease = options.Lease;
        _leaseHttp = new HttpClient { Timeout = _lease.RenewInterval * 2 };
        _startedAtMs = NowMs();
    }

    /// <summary>Logs a message of the Raft host, storage or transport at its level.</summary>
    private void LogRaft(RaftLogLevel level, string message) => Log.Raft(_logger, level switch
    {
        RaftLogLevel.Debug => LogLevel.Debug,
        RaftLogLevel.Information => LogLevel.Information,
        RaftLogLevel.Critical => LogLevel.Critical,
        _ => LogLevel.Warning,
    }, message);

    private string FenceFile => Path.Combine(_options.DataRoot, "fenced-epoch");

    private string DeadlineFile => Path.Combine(_options.DataRoot, "watchdog.deadline");

    /// <summary>Runs until <paramref name="cancellationToken"/> is cancelled, then stops Postgres cleanly.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var scope = _logger.BeginScope(new Dictionary<string, object> { ["instance"] = _options.Name, ["id"] = _options.Id });
        Prepare();
        IReadOnlyList<Member> members = [.. _options.Peers.Select(p => new Member(new NodeId(p.Id), p.RaftAddress, true))];
        _raft = new RaftHost<ControlState>(
            new RaftHostOptions
            {
                Id = new NodeId(_options.Id),

                // 50 ms ticks: a 500 ms election timeout and a 100 ms heartbeat. Shorter ticks elect faster
                // but, on a busy host, change leaders for nothing, and every change costs lease renewals.
                TickInterval = TimeSpan.FromMilliseconds(50),
                InitialMembers = members,
                Log = LogRaft,
            },
            new ControlStateMachine(members),
            new FileRaftStorage(new FileRaftStorageOptions { Directory = _options.RaftDirectory, Log = LogRaft }),
            new TcpRaftTransport(new TcpRaftTransportOptions
            {
                Id = new NodeId(_options.Id),
                ListenAddress = _options.Self.RaftAddress,
                ClusterKey = _clusterKey,
                Log = LogRaft,
            }),
            _time);
        await _raft.StartAsync(cancellationToken).ConfigureAwait(false);
        Log.Started(_logger, _options.Name, _options.Self.ToString());

        var peers = PollPeersAsync(cancellationToken);
        var lease = KeepLeaseAsync(cancellationToken);
        var failover = WatchPrimaryAsync(cancellationToken);
        var wake = WakeOnEpochChangeAsync(cancellationToken);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                // After an action the next step usually follows at once (promote, then create slots; stop, then
                // hand over), so only a round that waited sleeps, until the loop interval or a new epoch;
                // failed rounds back off inside RoundAsync.
                if (!await RoundAsync(cancellationToken).ConfigureAwait(false))
                {
                    await _wake.WaitAsync(_options.LoopInterval, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            if (_postgres is not null)
            {
                _stoppedOnPurpose = _postgres;
                await _postgres.StopAsync(ShutdownMode.Fast, TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(false);
                await _postgres.DisposeAsync().ConfigureAwait(false);
            }

            await peers.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await lease.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await failover.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await wake.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            ArmWatchdog(null);
            await _raft.DisposeAsync().ConfigureAwait(false);
            Log.Stopped(_logger, _options.Name);
        }
    }

    private void Prepare()
    {
        CheckReachableByPostgres();
        Directory.CreateDirectory(_options.DataRoot);
        Directory.CreateDirectory(_options.SocketDirectory);
        Directory.CreateDirectory(_options.RaftDirectory);
        var password = File.ReadAllText(_options.ReplicationPasswordFile).Trim();
        File.WriteAllText(_options.PassFile, $"*:*:*:{ReplicationUser}:{password.Replace(@"\", @"\\", StringComparison.Ordinal).Replace(":", @"\:", StringComparison.Ordinal)}\n");
        File.SetUnixFileMode(_options.PassFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _binaries.GiveToPostgres(_options.SocketDirectory);
        _binaries.GiveToPostgres(_options.PassFile);
        EnsureDataDirectory();
        ReadFenceFile();

        // A Postgres left running by an earlier life of this manager (killed with SIGKILL) is not supervised:
        // stop it before anything else; it starts again under this manager's rules.
        var leftovers = ProcessFence.ProcessesIn(_options.DataDirectory);
        if (leftovers.Count > 0)
        {
            Log.Leftovers(_logger, leftovers.Count);
            if (!ProcessFence.KillAllAsync(_options.DataDirectory, TimeSpan.FromSeconds(5), CancellationToken.None).GetAwaiter().GetResult())
            {
                throw new InvalidOperationException($"processes from an earlier Postgres still run in {_options.DataDirectory} after SIGKILL; refusing to start");
            }
        }

        ArmWatchdog(null);
        StartWatchdog();

        // The data root must be enterable by the postgres user, who owns only what is inside it.
        File.SetUnixFileMode(_options.DataRoot, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
    }

    /// <summary>
    /// PostgreSQL runs as another user when the manager is root; every folder above the data root must let that
    /// user in, or initdb fails with a message that does not say why. Refuse at start, naming the folder.
    /// </summary>
    private void CheckReachableByPostgres()
    {
        if (_binaries.RunAs is null)
        {
            return;
        }

        for (var dir = new DirectoryInfo(_options.DataRoot).Parent; dir is not null; dir = dir.Parent)
        {
            var mode = File.GetUnixFileMode(dir.FullName);
            if (!mode.HasFlag(UnixFileMode.OtherExecute))
            {
                throw new InvalidOperationException(
                    $"data-dir: PostgreSQL runs as '{_binaries.RunAs}', which cannot enter {dir.FullName} (mode {Convert.ToString((int)mode, 8)}); allow it (chmod o+x {dir.FullName}) or choose a data-dir below a folder it can enter");
            }
        }
    }

    private int _consecutiveFailures;

    /// <summary>One round: observe, decide, act. True when it acted (not a wait), so the next round may follow at once.</summary>
    private async Task<bool> RoundAsync(CancellationToken cancellationToken)
    {
        var observation = await ObserveAsync(cancellationToken).ConfigureAwait(false);
        var action = InstancePlanner.Next(observation);
        if (action.Why != _activity)
        {
            Log.Decided(_logger, action.GetType().Name, action.Why);
        }

        _activity = action.Why;
        _waiting = action is InstanceAction.Wait;
        try
        {
            await ExecuteAsync(action, observation, cancellationToken).ConfigureAwait(false);
            _consecutiveFailures = 0;
            return action is not (InstanceAction.Wait or InstanceAction.Propose or InstanceAction.AbortSwitchover);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            _lastError = $"{action.GetType().Name}: {e.Message}";
            _lastErrorAt = _time.GetUtcNow();
            Log.ActionFailed(_logger, action.GetType().Name, e.Message);

            // Back off on repeated failures (0.4 s, 0.8 s, ... up to 10 s) rather than retrying every round.
            _consecutiveFailures++;
            var backoff = TimeSpan.FromMilliseconds(Math.Min(10_000, 200 * Math.Pow(2, Math.Min(_consecutiveFailures, 6))));
            await Task.Delay(backoff, _time, cancellationToken).ConfigureAwait(false);
            return false;
        }
    }

    private async Task<Observation> ObserveAsync(CancellationToken cancellationToken)
    {
        var control = _raft!.State;
        if (control.Epoch.Value != _lastEpoch)
        {
            _lastEpoch = control.Epoch.Value;
            _primaryObjectsReady = false;
            _switchover = null;
        }

        var running = _postgres is { HasExited: false };
        if (_postgres is { HasExited: true } exited)
        {
            Log.PostgresExited(_logger, await exited.Exited.ConfigureAwait(false));
            // The lease keeper usually gets here first; either way the fence is recorded before anything could
            // start Postgres again as primary at this epoch.
            await FenceIfExitedUnexpectedlyAsync(exited, control, cancellationToken).ConfigureAwait(false);

            await exited.DisposeAsync().ConfigureAwait(false);
            _postgres = null;
            _primaryObjectsReady = false;
            _client.ResetPool();
        }

        // One assignment, so /status never sees a half-made observation.
        PgState? pg = null;
        var stateAt = NowMs();
        if (running)
        {
            try
            {
                pg = await _client.GetStateAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or IOException or InvalidOperationException or InvalidCastException)
            {
                pg = null;
                var message = $"status query: {e.GetType().Name}: {e.Message}";
                if (message != _lastError)
                {
                    Log.ObserveFailed(_logger, message);
                }

                _lastError = message;
                _lastErrorAt = _time.GetUtcNow();
            }
        }

        _pgState = pg;
        _pgStateAtMs = stateAt;

        return new Observation(
            _options.Id,
            control,
            _raft.Status.Role == RaftRole.Leader,
            DataKindOf(_options.DataDirectory),
            running,
            _pgState,
            _configuredUpstream,
            _primaryObjectsReady,
            _rewindFailed,
            _switchover,
            new Dictionary<ulong, PeerView>(_peers),
            NowMs(),
            _options.SwitchoverMaxLagBytes,
            (long)_options.SwitchoverTimeout.TotalMilliseconds)
        {
            HoldsPrimaryLease = HoldsPrimaryLease(control.Epoch.Value),
            FencedEpoch = _fencedEpoch,
            FenceReason = _fenceReason,
            StartupWaitMs = Math.Max(0, _startedAtMs + (long)_lease.Lease.TotalMilliseconds - NowMs()),
        };
    }

    private async Task ExecuteAsync(InstanceAction action, Observation o, CancellationToken cancellationToken)
    {
        switch (action)
        {
            case InstanceAction.Wait:
                await LabelAsync(cancellationToken).ConfigureAwait(false);
                return;
            case InstanceAction.Propose propose:
                var result = await ProposeAsync(propose.Command, cancellationToken).ConfigureAwait(false);
                if (!result.Accepted)
                {
                    throw new InvalidOperationException(result.Message);
                }

                return;
            case InstanceAction.InitDb:
                await _tools.InitDbAsync(_options.DataDirectory, cancellationToken).ConfigureAwait(false);
                return;
            case InstanceAction.CloneFrom clone:
                await CloneAsync(clone.From, cancellationToken).ConfigureAwait(false);
                return;
            case InstanceAction.Start start:
                if (start.Upstream == 0)
                {
                    _maybePrimary = true;
                    ArmWatchdogForLease();
                }

                WriteConfig(start.Upstream);
                _starting = true;
                try
                {
                    _client.ResetPool();
                    _postgres = PostgresProcess.Start(_binaries, _options.DataDirectory, _logger);
                    _primaryObjectsReady = false;
                    await _client.WaitReadyAsync(TimeSpan.FromSeconds(60), cancellationToken, _postgres.Exited).ConfigureAwait(false);
                }
                finally
                {
                    _starting = false;
                }

                return;
            case InstanceAction.Repoint repoint:
                WriteConfig(repoint.Upstream);
                await _client.ReloadAsync(cancellationToken).ConfigureAwait(false);
                return;
            case InstanceAction.Promote:
                _maybePrimary = true;
                ArmWatchdogForLease();
                if (await _client.PromoteAsync(cancellationToken).ConfigureAwait(false))
                {
                    WriteConfig(0);
                    await _client.ReloadAsync(cancellationToken).ConfigureAwait(false);
                    Log.Promoted(_logger, o.Control.Epoch.Value);
                }

                return;
            case InstanceAction.Fence fence:
                await FenceAsync(o.Control.Epoch.Value, fence.Why, cancellationToken).ConfigureAwait(false);
                return;
            case InstanceAction.EnsurePrimaryObjects:
                await EnsurePrimaryObjectsAsync(cancellationToken).ConfigureAwait(false);
                return;
            case InstanceAction.Stop stop:
                await StopPostgresAsync(cancellationToken).ConfigureAwait(false);
                if (stop.ForSwitchover)
                {
                    var control = await _tools.ControlDataAsync(_options.DataDirectory, cancellationToken).ConfigureAwait(false);
                    _switchover = new SwitchoverProgress(o.Control.PendingSwitchover.Value, Lsn.Parse(control["Latest checkpoint location"]), NowMs());
                }

                return;
            case InstanceAction.Rewind rewind:
                try
                {
                    await _tools.RewindAsync(_options.DataDirectory, SourceFor(rewind.From).ConnInfo + " dbname=postgres", cancellationToken).ConfigureAwait(false);
                }
                catch (PgToolException)
                {
                    _rewindFailed = true;
                    throw;
                }

                WriteConfig(rewind.From);
                return;
            case InstanceAction.Reclone reclone:
                var aside = _options.DataDirectory + ".diverged";
                if (Directory.Exists(aside))
                {
                    Directory.Delete(aside, recursive: true);
                }

                // The diverged data is kept beside the new copy, not deleted: it may hold writes no one else has.
                Directory.Move(_options.DataDirectory, aside);
                Log.KeptDiverged(_logger, aside);
                _rewindFailed = false;
                await CloneAsync(reclone.From, cancellationToken).ConfigureAwait(false);
                return;
            case InstanceAction.AbortSwitchover:
                _switchover = null;
                if (!o.Control.PendingSwitchover.IsNone)
                {
                    await ProposeAsync(ControlCommand.ClearSwitchover(o.Control.Epoch), cancellationToken).ConfigureAwait(false);
                }

                return;
            default:
                throw new InvalidOperationException($"no executor for {action.GetType().Name}");
        }
    }

    private async Task CloneAsync(ulong from, CancellationToken cancellationToken)
    {
        if (Directory.Exists(_options.DataDirectory))
        {
            Directory.Delete(_options.DataDirectory, recursive: true);
        }

        EnsureDataDirectory();
        await _tools.BaseBackupAsync(_options.DataDirectory, SourceFor(from), cancellationToken).ConfigureAwait(false);
        WriteConfig(from);
    }

    /// <summary>
    /// The data directory exists, belongs to the user PostgreSQL runs as and is private to it: initdb and
    /// pg_basebackup fill an empty one, and the folder around it stays the manager's.
    /// </summary>
    private void EnsureDataDirectory()
    {
        Directory.CreateDirectory(_options.DataDirectory);
        File.SetUnixFileMode(_options.DataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _binaries.GiveToPostgres(_options.DataDirectory);
    }

    private async Task StopPostgresAsync(CancellationToken cancellationToken)
    {
        if (_postgres is null)
        {
            return;
        }

        _stoppedOnPurpose = _postgres;
        await _postgres.StopAsync(ShutdownMode.Fast, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        await _postgres.DisposeAsync().ConfigureAwait(false);
        _postgres = null;
        _primaryObjectsReady = false;
        _client.ResetPool();
        ArmWatchdog(null);
    }

    private async Task EnsurePrimaryObjectsAsync(CancellationToken cancellationToken)
    {
        // Slots first: the replicas re-pointed at a new primary stream as soon as theirs exist.
        await _client.EnsureSlotsAsync(_options.Peers.Where(p => p.Id != _options.Id).Select(p => SlotName(p.Name)), cancellationToken).ConfigureAwait(false);
        var password = File.ReadAllText(_options.ReplicationPasswordFile).Trim();
        await _client.EnsureRoleAsync(ReplicationUser, password, replication: true, cancellationToken).ConfigureAwait(false);
        await _client.GrantRewindAsync(ReplicationUser, cancellationToken).ConfigureAwait(false);
        if (_options.AppPasswordFile is { } appFile)
        {
            await _client.EnsureRoleAsync(AppUser, File.ReadAllText(appFile).Trim(), replication: false, cancellationToken).ConfigureAwait(false);
            await _client.EnsureDatabaseAsync(AppUser, AppUser, cancellationToken).ConfigureAwait(false);
        }

        _primaryObjectsReady = true;
    }

    private void WriteConfig(ulong upstream)
    {
        var others = _options.Peers.Where(p => p.Id != _options.Id).Select(p => p.Name).ToList();
        var settings = new PostgresSettings(
            _options.Self.PgPort,
            _options.Self.Host,
            _options.SocketDirectory,
            _options.Name,
            upstream == 0 ? null : SourceFor(upstream),
            // Written on replicas too (where it does nothing): a replica that is promoted must require
            // synchronous standbys from its very first commit, not from the reload after promotion.
            PostgresConfigFiles.SynchronousStandbyNames(_options.Quorum, others, _options.Peers.Count),
            new Dictionary<string, string>());
        var data = _options.DataDirectory;
        File.WriteAllText(Path.Combine(data, "postgresql.conf"), PostgresConfigFiles.PostgresqlConf(settings));
        File.WriteAllText(Path.Combine(data, "postgresql.auto.conf"), "# Not used: the instance manager owns postgresql.conf.\n");
        File.WriteAllText(Path.Combine(data, "pg_hba.conf"), PostgresConfigFiles.PgHbaConf(ReplicationUser));
        var standbySignal = Path.Combine(data, "standby.signal");
        if (upstream == 0)
        {
            File.Delete(standbySignal);
        }
        else
        {
            File.WriteAllText(standbySignal, string.Empty);
        }

        _binaries.GiveToPostgres(data);
        _configuredUpstream = upstream;
    }

    private ReplicationSource SourceFor(ulong id)
    {
        var peer = _options.Peers.Single(p => p.Id == id);
        return new ReplicationSource(peer.Host, peer.PgPort, ReplicationUser, _options.PassFile, _options.Name, SlotName(_options.Name));
    }

    private static string SlotName(string instance) => instance.Replace('-', '_');

    private static DataKind DataKindOf(string directory) =>
        !File.Exists(Path.Combine(directory, "PG_VERSION")) ? DataKind.Missing
        : File.Exists(Path.Combine(directory, "standby.signal")) ? DataKind.Standby
        : DataKind.Primary;

    private long NowMs() => (long)_time.GetElapsedTime(0).TotalMilliseconds;

    private async Task LabelAsync(CancellationToken cancellationToken)
    {
        var role = RoleOf();
        if (role != _labelledRole)
        {
            await _labeler.SetRoleAsync(role, cancellationToken).ConfigureAwait(false);
            _labelledRole = role;
        }
    }

    private string RoleOf() => _pgState switch
    {
        null => InstanceRoles.Unknown,
        { InRecovery: true } => InstanceRoles.Replica,
        _ when _raft?.State.Primary.Value == _options.Id => InstanceRoles.Primary,
        _ => InstanceRoles.Unknown,
    };

    // ---------------------------------------------------------------- the primary lease and fencing

    /// <summary>Until when (ms) the lease held for <paramref name="epoch"/> lets Postgres write; null when none is held for it.</summary>
    private long? LeaseUsableUntilMs(ulong epoch)
    {
        lock (_leaseLock)
        {
            return _leaseEpoch == epoch && epoch != 0 ? _leaseSentMs + (long)_lease.FenceAfter.TotalMilliseconds : null;
        }
    }

    private bool HoldsPrimaryLease(ulong epoch) => LeaseUsableUntilMs(epoch) is { } until && NowMs() < until;

    /// <summary>
    /// The lease keeper, beside the main loop so that a long action never delays it: while the control state
    /// names this instance primary it proves Postgres healthy and asks the Raft leader for a renewal every
    /// <see cref="LeaseTimings.RenewInterval"/>; it fences at once when Postgres dies, and when the lease runs
    /// out while Postgres may be writing.
    /// </summary>
    private async Task KeepLeaseAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                KeepWatchdogRunning();
                await LeaseRoundAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                Log.LeaseRoundFailed(_logger, e.Message);
            }

            // Woken early when Postgres exits (unless it already has) or the epoch changes.
            var exited = _postgres is { HasExited: false } running ? running.Exited : Never;
            try
            {
                await Task.WhenAny(exited, _leaseWake.WaitAsync(_lease.RenewInterval, cancellationToken)).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task LeaseRoundAsync(CancellationToken cancellationToken)
    {
        var control = _raft!.State;
        var ours = control.Epoch.Value != 0 && control.Primary.Value == _options.Id;
        var pg = _postgres;
        if (pg is { HasExited: true } && await FenceIfExitedUnexpectedlyAsync(pg, control, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        var running = pg is { HasExited: false };

        // While the main loop starts or promotes Postgres (bounded by its own time limits) there is nothing to
        // probe yet; the lease is renewed so that it is there when Postgres opens.
        var (healthy, inRecovery) = running && !_starting ? await ProbeAsync(cancellationToken).ConfigureAwait(false) : (true, (bool?)null);

        // Postgres may be accepting writes when a probe shows it out of recovery, or does not answer after it
        // was started or promoted as primary.
        if (!running || inRecovery == true)
        {
            _maybePrimary = false;
        }

        var mayWrite = running && (inRecovery == false || (inRecovery is null && _maybePrimary));
        if (ours && _fencedEpoch != control.Epoch.Value && healthy)
        {
            await RenewAsync(control.Epoch.Value, cancellationToken).ConfigureAwait(false);
        }

        if (!mayWrite)
        {
            if (running && inRecovery == true)
            {
                ArmWatchdog(null);
            }

            return;
        }

        ArmWatchdogForLease();
        if (!HoldsPrimaryLease(control.Epoch.Value) || !ours)
        {
            var reason = !ours
                ? $"epoch {control.Epoch} names {NameOf(control.Primary)} primary"
                : healthy ? "no lease renewal from the Raft leader in time" : "postgres failed its health probe (query or disk) until the lease ran out";
            await FenceAsync(ours ? control.Epoch.Value : 0, reason, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Health: a query answers within a second, and a small write to the data volume is flushed within a
    /// second. Also says whether Postgres is in recovery (null when it did not answer).
    /// </summary>
    private async Task<(bool Healthy, bool? InRecovery)> ProbeAsync(CancellationToken cancellationToken)
    {
        if (_probePending)
        {
            // An earlier disk probe is still blocked: the volume is stalled.
            return (false, null);
        }

        bool? inRecovery;
        try
        {
            inRecovery = await _client.InRecoveryAsync(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        }
        catch (Npgsql.PostgresException e) when (e.SqlState == Npgsql.PostgresErrorCodes.CannotConnectNow)
        {
            // Starting up or shutting down: alive, and not accepting writes at this moment.
            return (true, null);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or IOException or InvalidOperationException)
        {
            return (false, null);
        }

        _probePending = true;
        var write = Task.Run(() =>
        {
            try
            {
                using var file = new FileStream(Path.Combine(_options.DataRoot, "probe"), FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.WriteThrough);
                file.Write(BitConverter.GetBytes(NowMs()));
                file.Flush(flushToDisk: true);
            }
            finally
            {
                _probePending = false;
            }
        }, CancellationToken.None);
        try
        {
            await write.WaitAsync(TimeSpan.FromSeconds(1), _time, cancellationToken).ConfigureAwait(false);
            return (true, inRecovery);
        }
        catch (Exception e) when (e is TimeoutException or IOException or UnauthorizedAccessException)
        {
            return (false, inRecovery);
        }
    }

    private async Task RenewAsync(ulong epoch, CancellationToken cancellationToken)
    {
        var sentMs = NowMs();
        var sentTimestamp = _time.GetTimestamp();
        ManagerAnswer answer;
        var leader = _raft!.Status.Leader;
        if (leader.IsNone)
        {
            answer = new ManagerAnswer(false, "no Raft leader known");
        }
        else if (leader.Value == _options.Id)
        {
            // Bounded like a remote renewal: a read that cannot reach a quorum must not hold up the fence check.
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(_lease.RenewInterval * 2);
            try
            {
                answer = await GrantLeaseAsync(_options.Id, epoch, limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                answer = new ManagerAnswer(false, "the linearizable read for the renewal timed out");
            }
        }
        else
        {
            try
            {
                answer = await PostToManagerAsync(_leaseHttp, leader.Value, LeasePurpose, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{_options.Id} {epoch}"), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
            {
                answer = new ManagerAnswer(false, $"asking the Raft leader: {e.GetType().Name}: {e.Message}");
            }
        }

        var note = answer.Accepted ? null : answer.Message;
        if (note != _renewalNote)
        {
            if (note is null)
            {
                Log.RenewalGranted(_logger, epoch);
            }
            else
            {
                Log.RenewalRefused(_logger, epoch, note);
            }

            _renewalNote = note;
        }

        if (answer.Accepted)
        {
            lock (_leaseLock)
            {
                if (epoch > _leaseEpoch || (epoch == _leaseEpoch && sentMs > _leaseSentMs))
                {
                    if (epoch > _leaseEpoch)
                    {
                        // A first lease at a new epoch: the main loop may be waiting for it to promote or start.
                        _wake.Release();
                    }

                    _leaseEpoch = epoch;
                    _leaseSentMs = sentMs;
                    _leaseSentTimestamp = sentTimestamp;
                }
            }
        }
    }

    /// <summary>
    /// The Raft leader's side of a renewal: granted only by a leader that holds its Raft lease (so no other
    /// leader can exist), after a linearizable read shows <paramref name="id"/> primary at <paramref name="epoch"/>,
    /// and never for an epoch it has decided to fail over from.
    /// </summary>
    public async Task<ManagerAnswer> GrantLeaseAsync(ulong id, ulong epoch, CancellationToken cancellationToken)
    {
        var raft = _raft!;
        if (raft.Status.Role != RaftRole.Leader)
        {
            return new(false, "not the Raft leader");
        }

        ControlState state;
        try
        {
            state = await raft.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NotLeaderException or ProposalLostException or TimeoutException)
        {
            return new(false, e.Message);
        }

        if (!raft.HoldsLease)
        {
            return new(false, "the Raft leader does not hold its leader lease");
        }

        if (state.Epoch.Value != epoch || state.Primary.Value != id)
        {
            return new(false, $"epoch is {state.Epoch}, primary {NameOf(state.Primary)}", state.Epoch.Value);
        }

        lock (_leaseLock)
        {
            if (_noGrantEpoch == epoch)
            {
                return new(false, $"failing over from epoch {epoch}", epoch);
            }

            _grantEpoch = epoch;
            _grantMs = NowMs();
        }

        return new(true, "granted", epoch);
    }

    /// <summary>Handles a renewal forwarded by the primary's manager: <c>ID EPOCH</c>, signed with the cluster key.</summary>
    public async Task<ManagerAnswer> AcceptLeaseRequestAsync(string body, string? signature, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (!SignedByMember(LeasePurpose, body, signature))
        {
            return new(false, "bad or missing signature");
        }

        var parts = body.Split(' ');
        return parts.Length == 2
            && ulong.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
            && ulong.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var epoch)
            ? await GrantLeaseAsync(id, epoch, cancellationToken).ConfigureAwait(false)
            : new(false, "malformed lease request: expected 'ID EPOCH'");
    }

    /// <summary>
    /// The primary's Postgres exited and no one stopped it on purpose: fence (once per process) at the current
    /// epoch. True when it did.
    /// </summary>
    private async Task<bool> FenceIfExitedUnexpectedlyAsync(PostgresProcess exited, ControlState control, CancellationToken cancellationToken)
    {
        if (ReferenceEquals(exited, _stoppedOnPurpose) || ReferenceEquals(exited, _exitHandled) || control.Epoch.Value == 0 || control.Primary.Value != _options.Id)
        {
            return false;
        }

        await FenceAsync(control.Epoch.Value, "postgres exited unexpectedly", cancellationToken).ConfigureAwait(false);
        _exitHandled = exited;
        return true;
    }

    /// <summary>
    /// Stops Postgres for good (SIGKILL to every process in the data directory) and, for the primary of
    /// <paramref name="epoch"/>, records and reports the fence once no process is left.
    /// </summary>
    private async Task FenceAsync(ulong epoch, string reason, CancellationToken cancellationToken)
    {
        await _fenceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (epoch != 0 && _fencedEpoch == epoch && ProcessFence.ProcessesIn(_options.DataDirectory).Count == 0)
            {
                return;
            }

            Log.Fencing(_logger, reason);
            if (!await ProcessFence.KillAllAsync(_options.DataDirectory, _lease.StopBudget, cancellationToken).ConfigureAwait(false))
            {
                _lastError = $"fence: processes survived SIGKILL in {_options.DataDirectory} for {_lease.StopBudget.TotalMilliseconds} ms";
                _lastErrorAt = _time.GetUtcNow();
                return;
            }

            if (epoch != 0)
            {
                _fencedEpoch = epoch;
                _fenceReason = reason;
                File.WriteAllText(FenceFile, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{epoch}\n{reason}\n"));
                Log.Fenced(_logger, epoch, reason);
            }

            ArmWatchdog(null);
            _wake.Release();
        }
        finally
        {
            _fenceGate.Release();
        }
    }

    private void ReadFenceFile()
    {
        if (!File.Exists(FenceFile))
        {
            return;
        }

        var lines = File.ReadAllLines(FenceFile);
        if (lines.Length > 0 && ulong.TryParse(lines[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var epoch))
        {
            _fencedEpoch = epoch;
            _fenceReason = lines.Length > 1 ? lines[1] : "recorded before a restart";
        }
        else
        {
            throw new InvalidDataException($"{FenceFile}: expected the fenced epoch on its first line; delete the file only if this instance's Postgres is known to be stopped");
        }
    }

    /// <summary>Arms the watchdog at the current lease's deadline (or at once, when there is no lease for the current epoch).</summary>
    private void ArmWatchdogForLease()
    {
        long deadline;
        lock (_leaseLock)
        {
            deadline = _leaseSentTimestamp + (long)(_lease.WatchdogAfter.TotalSeconds * _time.TimestampFrequency);
        }

        ArmWatchdog(deadline);
    }

    private void ArmWatchdog(long? deadlineTimestamp)
    {
        if (_watchdogWritten && _watchdogArmed == deadlineTimestamp)
        {
            return;
        }

        WatchdogDeadline.Write(DeadlineFile, deadlineTimestamp);
        _watchdogArmed = deadlineTimestamp;
        _watchdogWritten = true;
    }

    private void StartWatchdog()
    {
        if (_options.WatchdogCommand is not { Count: > 0 } command)
        {
            Log.NoWatchdog(_logger);
            return;
        }

        var info = new System.Diagnostics.ProcessStartInfo(command[0]) { UseShellExecute = false, WorkingDirectory = "/" };
        foreach (var argument in command.Skip(1).Concat(["--data-dir", _options.DataDirectory, "--deadline-file", DeadlineFile, "--manager-pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            info.ArgumentList.Add(argument);
        }

        _watchdog = System.Diagnostics.Process.Start(info);
    }

    /// <summary>Wakes the main loop as soon as the committed epoch changes, rather than at its next round.</summary>
    private async Task WakeOnEpochChangeAsync(CancellationToken cancellationToken)
    {
        var raft = _raft!;
        var seen = raft.State.Epoch.Value;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                // Raft evaluates the condition each time it has applied entries: no polling.
                await raft.WaitForAsync(_ => raft.State.Epoch.Value != seen, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            seen = raft.State.Epoch.Value;
            _wake.Release();
            _leaseWake.Release();
        }
    }

    /// <summary>Starts the watchdog again if it has exited (it must run whenever this manager does).</summary>
    private void KeepWatchdogRunning()
    {
        if (_watchdog is { HasExited: true } dead)
        {
            Log.WatchdogExited(_logger, dead.ExitCode);
            dead.Dispose();
            _watchdog = null;
            StartWatchdog();
        }
    }

    /// <summary>
    /// On the Raft leader only: checks the primary every peer poll and, when it has failed, commits the
    /// replacement <see cref="FailoverPlanner"/> chooses.
    /// </summary>
    private async Task WatchPrimaryAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(PeerPollInterval, _time, cancellationToken).ConfigureAwait(false);
                await FailoverRoundAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.LeaseRoundFailed(_logger, e.Message);
            }
        }
    }

    /// <summary>
    /// A Raft leader that is also the primary hands Raft leadership to a streaming replica: when the primary's
    /// host fails, the leader that must replace it is then already elsewhere, and no election comes first.
    /// </summary>
    private async Task HandOverLeadershipAsync(ControlState control, Dictionary<ulong, PeerView> views, long now, CancellationToken cancellationToken)
    {
        if (control.Primary.Value != _options.Id || !control.PendingSwitchover.IsNone || now - _leaderSinceMs < 2000 || now - _lastHandOverMs < 10_000)
        {
            return;
        }

        var target = views.Values
            .Where(v => v.Id != _options.Id && v is { Reachable: true, Ready: true, Streaming: true })
            .OrderByDescending(v => v.ReceiveLsn).ThenBy(v => v.Id)
            .FirstOrDefault();
        if (target is null)
        {
            return;
        }

        _lastHandOverMs = now;
        Log.HandingOver(_logger, target.Name);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await _raft!.TransferLeadershipAsync(new NodeId(target.Id), limit.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            Log.LeaseRoundFailed(_logger, $"handing Raft leadership to {target.Name}: {e.Message}");
        }
    }

    private async Task FailoverRoundAsync(CancellationToken cancellationToken)
    {
        var raft = _raft!;
        var status = raft.Status;
        var now = NowMs();
        if (status.Role != RaftRole.Leader)
        {
            _leaderSinceMs = -1;
            _failoverNote = null;
            return;
        }

        if (_leaderSinceMs < 0 || status.Term.Value != _leaderTerm)
        {
            // Grants of earlier leaders all happened before this one was elected (they held Raft leases).
            _leaderSinceMs = now;
            _leaderTerm = status.Term.Value;
        }

        var control = raft.State;
        if (control.Epoch.Value != _epochSeen)
        {
            _epochSeen = control.Epoch.Value;
            _epochSeenMs = now;
        }

        var views = new Dictionary<ulong, PeerView>(_peers) { [_options.Id] = SelfView() };
        if (views.TryGetValue(control.Primary.Value, out var primary) && primary.Reachable && primary.FencedEpoch == control.Epoch.Value && _fencedSeenEpoch != control.Epoch.Value)
        {
            _fencedSeenEpoch = control.Epoch.Value;
            _fencedSeenMs = now;
        }

        long lastRenewal;
        lock (_leaseLock)
        {
            lastRenewal = Math.Max(_leaderSinceMs, Math.Max(_epochSeenMs, _grantEpoch == control.Epoch.Value ? _grantMs : long.MinValue));
        }

        var decision = FailoverPlanner.Decide(new FailoverInput(
            control,
            _options.Peers.Count,
            _options.Quorum,
            views,
            now,
            lastRenewal,
            _fencedSeenEpoch == control.Epoch.Value ? _fencedSeenMs : null,
            _lease));
        switch (decision)
        {
            case FailoverDecision.Healthy:
                _failoverNote = null;
                await HandOverLeadershipAsync(control, views, now, cancellationToken).ConfigureAwait(false);
                return;
            case FailoverDecision.Blocked blocked:
                // The reason carries running figures; log it when it first appears, then every 2 s at most.
                if (_failoverNote is null || (_failoverNote != blocked.Why && now - _failoverLoggedAtMs >= 2000))
                {
                    Log.FailoverBlocked(_logger, blocked.Why);
                    _failoverLoggedAtMs = now;
                }

                _failoverNote = blocked.Why;
                return;
            case FailoverDecision.Promote promote:
                lock (_leaseLock)
                {
                    // IMPORTANT: from here on no renewal is granted for this epoch, so the old primary's lease
                    // only runs out.
                    _noGrantEpoch = control.Epoch.Value;
                }

                Log.FailingOver(_logger, control.Epoch.Value, promote.Why);
                _failoverNote = promote.Why;
                var result = await raft.ProposeAsync(ControlCommand.SetPrimary(control.Epoch, new MemberId(promote.Target)).Encode(), cancellationToken).ConfigureAwait(false);
                if (result.Outcome != ApplyOutcome.Applied)
                {
                    Log.FailoverBlocked(_logger, $"the failover proposal was refused: {result.Outcome} {result.Reason}");
                }

                return;
        }
    }

    // ---------------------------------------------------------------- what the HTTP API serves

    /// <summary>What <c>GET /status</c> returns.</summary>
    public StatusDocument Status()
    {
        var control = _raft?.State ?? ControlState.Initial;
        var raft = _raft?.Status;
        var pg = _pgState;
        var role = RoleOf();
        var primaryView = control.Primary.IsNone ? null : _peers.GetValueOrDefault(control.Primary.Value);
        long? lag = pg switch
        {
            null => null,
            { InRecovery: false } => 0,
            _ when primaryView is { Reachable: true } => (long)(primaryView.WriteLsn - Math.Min(primaryView.WriteLsn, pg.ReplayLsn)),
            _ => null,
        };
        return new StatusDocument
        {
            Name = _options.Name,
            Id = _options.Id,
            Role = role,
            Ready = IsReady(),
            PostgresRunning = _postgres is { HasExited: false },
            Epoch = control.Epoch.Value,
            Primary = NameOf(control.Primary),
            PendingSwitchover = NameOf(control.PendingSwitchover),
            Timeline = pg?.Timeline,
            WriteLsn = pg is null ? null : Lsn.Format(pg.WriteLsn),
            ReceiveLsn = pg is null ? null : Lsn.Format(pg.ReceiveLsn),
            ReplayLsn = pg is null ? null : Lsn.Format(pg.ReplayLsn),
            LagBytes = lag,
            Streaming = pg?.Streaming ?? false,
            Raft = new RaftStatusDocument(
                raft?.Term.Value ?? 0,
                (raft?.Role ?? RaftRole.Unknown).ToString().ToLowerInvariant(),
                raft is null ? null : NameOf(raft.Leader),
                [.. _options.Peers.Select(p => p.Name)],
                _raft?.HoldsLease ?? false),
            Activity = _activity,
            LastError = _lastError,
            LastErrorAt = _lastErrorAt,
            StateAgeMs = Math.Max(0, NowMs() - _pgStateAtMs),
            FencedEpoch = _fencedEpoch,
            Fenced = _fencedEpoch != 0 && _fencedEpoch == control.Epoch.Value,
            FenceReason = _fencedEpoch != 0 && _fencedEpoch == control.Epoch.Value ? _fenceReason : null,
            LeaseRemainingMs = LeaseRemainingMs(control),
            Watchdog = _options.WatchdogCommand is null ? "off" : _watchdogArmed is null ? "disarmed" : "armed",
            Failover = _failoverNote,
        };
    }

    private long? LeaseRemainingMs(ControlState control)
    {
        if (control.Primary.Value != _options.Id || control.Epoch.Value == 0)
        {
            return null;
        }

        return LeaseUsableUntilMs(control.Epoch.Value) is { } until ? Math.Max(0, until - NowMs()) : 0;
    }

    /// <summary>Ready for its role: a primary taking writes at the current epoch, or a streaming replica.</summary>
    public bool IsReady() => _pgState switch
    {
        null => false,
        { InRecovery: false } => _raft?.State.Primary.Value == _options.Id && _primaryObjectsReady,
        { Streaming: var streaming } => streaming,
    };

    /// <summary>Alive: the manager runs, and Postgres runs (or is meant to be down for a step in progress).</summary>
    public bool IsAlive() => _postgres is { HasExited: false } || _waiting || _switchover is not null;

    /// <summary>Prometheus text exposition of the manager's state.</summary>
    public string Metrics()
    {
        var s = Status();
        var counters = _raft?.Counters;
        var labels = $"instance=\"{s.Name}\"";
        var text = new StringBuilder();
        void Gauge(string name, string help, double value)
        {
            text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
                .Append("# TYPE ").Append(name).Append(" gauge\n")
                .Append(name).Append('{').Append(labels).Append("} ").Append(value.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append('\n');
        }

        Gauge("memorycluster_instance_up", "1 when PostgreSQL runs", s.PostgresRunning ? 1 : 0);
        Gauge("memorycluster_instance_ready", "1 when ready for its role", s.Ready ? 1 : 0);
        Gauge("memorycluster_instance_is_primary", "1 on the primary", s.Role == InstanceRoles.Primary ? 1 : 0);
        Gauge("memorycluster_instance_epoch", "fencing epoch of the control state", s.Epoch);
        Gauge("memorycluster_instance_timeline", "PostgreSQL timeline", s.Timeline ?? 0);
        Gauge("memorycluster_instance_replay_lag_bytes", "WAL bytes still to replay on a replica", s.LagBytes ?? -1);
        Gauge("memorycluster_raft_term", "current Raft term", s.Raft.Term);
        Gauge("memorycluster_raft_is_leader", "1 on the Raft leader", s.Raft.Role == "leader" ? 1 : 0);
        Gauge("memorycluster_raft_holds_lease", "1 while the leader lease is valid", s.Raft.HoldsLease ? 1 : 0);
        if (counters is not null)
        {
            Gauge("memorycluster_raft_proposals_total", "proposals made on this node", counters.Proposals);
            Gauge("memorycluster_raft_entries_applied_total", "entries applied to the control state", counters.EntriesApplied);
            Gauge("memorycluster_raft_times_became_leader_total", "elections won", counters.TimesBecameLeader);
        }

        return text.ToString();
    }

    /// <summary>
    /// Handles <c>POST /switchover</c>: refuses at once, with the reason, a target that is unknown, already
    /// primary, not streaming or too far behind; otherwise records the request in Raft.
    /// </summary>
    public async Task<ManagerAnswer> RequestSwitchoverAsync(string to, CancellationToken cancellationToken)
    {
        var control = _raft!.State;
        var target = _options.Peers.FirstOrDefault(p => p.Name == to);
        if (target is null)
        {
            return new(false, $"no member is named '{to}' (members: {string.Join(", ", _options.Peers.Select(p => p.Name))})");
        }

        if (control.Primary.Value == target.Id)
        {
            return new(false, $"{to} is already the primary (epoch {control.Epoch})");
        }

        if (control.Primary.IsNone)
        {
            return new(false, "the cluster has no primary yet");
        }

        var view = target.Id == _options.Id ? SelfView() : _peers.GetValueOrDefault(target.Id);
        if (view is not { Reachable: true, Ready: true, Streaming: true })
        {
            return new(false, $"{to} is not a healthy, streaming replica; refusing to switch over to it");
        }

        var primary = control.Primary.Value == _options.Id ? SelfView() : _peers.GetValueOrDefault(control.Primary.Value);
        if (primary is not { Reachable: true, Ready: true })
        {
            return new(false, "the primary is not ready; a switchover needs a healthy primary to hand over from");
        }

        var lag = (long)(primary.WriteLsn - Math.Min(primary.WriteLsn, view.ReceiveLsn));
        if (lag > _options.SwitchoverMaxLagBytes)
        {
            return new(false, $"{to} is {lag} bytes behind the primary (limit {_options.SwitchoverMaxLagBytes}); refusing");
        }

        var result = await ProposeAsync(ControlCommand.RequestSwitchover(control.Epoch, new MemberId(target.Id)), cancellationToken).ConfigureAwait(false);
        return result.Accepted ? new(true, $"switchover to {to} requested at epoch {control.Epoch}", control.Epoch.Value) : result;
    }

    /// <summary>Proposes on the Raft leader: here when this node leads, else through the leader's manager.</summary>
    public async Task<ManagerAnswer> ProposeAsync(ControlCommand command, CancellationToken cancellationToken)
    {
        var raft = _raft!;
        var leader = raft.Status.Leader;
        if (leader.IsNone)
        {
            return new(false, "no Raft leader right now; try again");
        }

        if (leader.Value == _options.Id)
        {
            try
            {
                var applied = await raft.ProposeAsync(command.Encode(), cancellationToken).ConfigureAwait(false);
                return applied.Outcome == ApplyOutcome.Applied
                    ? new(true, $"{command.Type} applied", applied.State.Epoch.Value)
                    : new(false, $"{command.Type} refused by the control state: {applied.Outcome} {applied.Reason}".TrimEnd(), applied.State.Epoch.Value);
            }
            catch (Exception e) when (e is NotLeaderException or ProposalLostException)
            {
                return new(false, e.Message);
            }
        }

        return await PostToManagerAsync(_http, leader.Value, ProposePurpose, Convert.ToBase64String(command.Encode()), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>POSTs <paramref name="body"/>, signed with the cluster key, to another member's <c>/internal/PURPOSE</c>.</summary>
    private async Task<ManagerAnswer> PostToManagerAsync(HttpClient http, ulong member, string purpose, string body, CancellationToken cancellationToken)
    {
        var peer = _options.Peers.Single(p => p.Id == member);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(peer.HttpBase, "internal/" + purpose))
        {
            Content = new StringContent(body, Encoding.ASCII, "text/plain"),
        };
        request.Headers.Add(SignatureHeader, Sign(purpose, body));
        using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadFromJsonAsync<ManagerAnswer>(JsonOptions, cancellationToken).ConfigureAwait(false)
            ?? new ManagerAnswer(false, $"{peer.Name} answered {(int)response.StatusCode} without a body");
    }

    /// <summary>Whether <paramref name="signature"/> is the cluster key's signature of <paramref name="body"/> for <paramref name="purpose"/>; logs when not.</summary>
    private bool SignedByMember(string purpose, string body, string? signature)
    {
        if (signature is not null && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Sign(purpose, body)), Encoding.ASCII.GetBytes(signature)))
        {
            return true;
        }

        Log.BadSignature(_logger);
        return false;
    }

    /// <summary>Handles a proposal forwarded by another member's manager, checking the cluster-key signature.</summary>
    public async Task<ManagerAnswer> AcceptForwardedProposalAsync(string body, string? signature, CancellationToken cancellationToken)
    {
        if (!SignedByMember(ProposePurpose, body, signature))
        {
            return new(false, "bad or missing signature");
        }

        ControlCommand command;
        try
        {
            command = ControlCommand.Decode(Convert.FromBase64String(body));
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidDataException)
        {
            return new(false, $"malformed command: {e.Message}");
        }

        return await ProposeAsync(command, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>How often every other member's /status is read.</summary>
    internal static readonly TimeSpan PeerPollInterval = TimeSpan.FromMilliseconds(100);

    internal const string SignatureHeader = "X-MemoryCluster-Signature";

    private const string ProposePurpose = "propose";
    private const string LeasePurpose = "lease";

    /// <summary>HMAC-SHA256 of <c>PURPOSE:BODY</c> with the cluster key: a signature for one endpoint is no good for another.</summary>
    private string Sign(string purpose, string body) => Convert.ToHexString(HMACSHA256.HashData(_clusterKey, Encoding.ASCII.GetBytes(purpose + ":" + body)));

    private PeerView SelfView() => ToPeerView(Status(), NowMs());

    private string? NameOf(MemberId id) => NameOf(id.ToNodeId());

    private string? NameOf(NodeId id) => id.IsNone ? null : _options.Peers.FirstOrDefault(p => p.Id == id.Value)?.Name ?? id.ToString();

    private async Task PollPeersAsync(CancellationToken cancellationToken)
    {
        var others = _options.Peers.Where(p => p.Id != _options.Id).ToList();
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.WhenAll(others.Select(p => PollAsync(p, cancellationToken))).ConfigureAwait(false);
            try
            {
                await Task.Delay(PeerPollInterval, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task PollAsync(Peer peer, CancellationToken cancellationToken)
    {
        try
        {
            var sent = NowMs();
            var status = await _http.GetFromJsonAsync<StatusDocument>(new Uri(peer.HttpBase, "status"), JsonOptions, cancellationToken).ConfigureAwait(false);
            _peers[peer.Id] = status is null ? Unreachable(peer) : ToPeerView(status, sent);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
        {
            _peers[peer.Id] = Unreachable(peer);
        }
    }

    private static PeerView Unreachable(Peer peer) => new(peer.Id, peer.Name, false, InstanceRoles.Unknown, false, false, 0, 0, 0);

    /// <summary>A member's report; <paramref name="askedAtMs"/> is when it was asked, so its Postgres state is no newer than that minus its age.</summary>
    private static PeerView ToPeerView(StatusDocument s, long askedAtMs) => new(
        s.Id,
        s.Name,
        true,
        s.Role,
        s.Ready,
        s.Streaming,
        s.ReceiveLsn is null ? 0 : Lsn.Parse(s.ReceiveLsn),
        s.WriteLsn is null ? 0 : Lsn.Parse(s.WriteLsn),
        s.Timeline ?? 0,
        s.PostgresRunning,
        s.FencedEpoch,
        askedAtMs - s.StateAgeMs);

    public static JsonSerializerOptions JsonOptions { get; } = new(JsonSerializerDefaults.Web);

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        _leaseHttp.Dispose();
        _fenceGate.Dispose();
        _wake.Dispose();
        _leaseWake.Dispose();
        _watchdog?.Dispose();
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(10, LogLevel.Information, "instance manager {Name} started ({Self})")]
        public static partial void Started(ILogger logger, string name, string self);

        [LoggerMessage(11, LogLevel.Information, "instance manager {Name} stopped")]
        public static partial void Stopped(ILogger logger, string name);

        [LoggerMessage(12, LogLevel.Information, "{Action}: {Why}")]
        public static partial void Decided(ILogger logger, string action, string why);

        [LoggerMessage(13, LogLevel.Warning, "{Action} failed: {Error}")]
        public static partial void ActionFailed(ILogger logger, string action, string error);

        [LoggerMessage(14, LogLevel.Warning, "postgres exited with code {ExitCode}")]
        public static partial void PostgresExited(ILogger logger, int exitCode);

        [LoggerMessage(15, LogLevel.Information, "promoted at epoch {Epoch}")]
        public static partial void Promoted(ILogger logger, ulong epoch);

        [LoggerMessage(EventId = 16, Message = "raft: {Message}")]
        public static partial void Raft(ILogger logger, LogLevel level, string message);

        [LoggerMessage(19, LogLevel.Warning, "{Message}")]
        public static partial void ObserveFailed(ILogger logger, string message);

        [LoggerMessage(18, LogLevel.Warning, "the diverged former-primary data is kept at {Path}")]
        public static partial void KeptDiverged(ILogger logger, string path);

        [LoggerMessage(20, LogLevel.Warning, "stopping {Count} processes an earlier Postgres left in the data directory")]
        public static partial void Leftovers(ILogger logger, int count);

        [LoggerMessage(21, LogLevel.Warning, "lease keeper: {Error}")]
        public static partial void LeaseRoundFailed(ILogger logger, string error);

        [LoggerMessage(22, LogLevel.Warning, "fencing: {Reason}")]
        public static partial void Fencing(ILogger logger, string reason);

        [LoggerMessage(23, LogLevel.Warning, "fenced at epoch {Epoch}: postgres stopped ({Reason})")]
        public static partial void Fenced(ILogger logger, ulong epoch, string reason);

        [LoggerMessage(24, LogLevel.Warning, "no watchdog process configured: a hung manager cannot be fenced by anything but its own lease rule")]
        public static partial void NoWatchdog(ILogger logger);

        [LoggerMessage(25, LogLevel.Warning, "the watchdog exited with code {Code}; starting it again")]
        public static partial void WatchdogExited(ILogger logger, int code);

        [LoggerMessage(26, LogLevel.Warning, "failover blocked: {Why}")]
        public static partial void FailoverBlocked(ILogger logger, string why);

        [LoggerMessage(27, LogLevel.Warning, "failover from epoch {Epoch}: {Why}")]
        public static partial void FailingOver(ILogger logger, ulong epoch, string why);

        [LoggerMessage(34, LogLevel.Information, "this Raft leader is the primary: handing Raft leadership to {Target}")]
        public static partial void HandingOver(ILogger logger, string target);

        [LoggerMessage(28, LogLevel.Information, "primary lease renewed at epoch {Epoch}")]
        public static partial void RenewalGranted(ILogger logger, ulong epoch);

        [LoggerMessage(29, LogLevel.Warning, "primary lease renewal at epoch {Epoch} not granted: {Why}")]
        public static partial void RenewalRefused(ILogger logger, ulong epoch, string why);

        [LoggerMessage(17, LogLevel.Warning, "refused a forwarded proposal with a bad or missing signature")]
        public static partial void BadSignature(ILogger logger);
    }
}
