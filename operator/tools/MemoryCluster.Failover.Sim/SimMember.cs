using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using MemoryCluster.Raft;

namespace MemoryCluster.Failover.Sim;

/// <summary>
/// One simulated host: its clock, its manager (an <see cref="InstanceNode"/> and a Raft <see cref="RawNode"/>, driven
/// the way the real host drives them), its PostgreSQL, and its watchdog process. The manager can crash (state lost,
/// Raft storage kept) or pause (SIGSTOP: nothing it does happens until it resumes); PostgreSQL can crash or freeze
/// on its own; the watchdog runs beside the manager.
/// </summary>
internal sealed class SimMember(MemberId id, string name, double rate)
{
    public MemberId Id { get; } = id;

    public string Name { get; } = name;

    /// <summary>True µs between PostgreSQL reading its state for a query and the manager getting the answer (a loaded host).</summary>
    public long ObserveLag { get; set; }

    /// <summary>A state query is in flight until its answer is handed to the node: as the real host, the next one waits for it.</summary>
    public bool QueryInFlight { get; set; }

    // ---------------------------------------------------------------- the clock (monotonic, drifting)

    private double _rate = rate;
    private long _baseTrue;
    private double _baseLocal;

    /// <summary>This host's monotonic clock in ms at true time <paramref name="now"/> (µs).</summary>
    public long LocalMs(long now) => (long)((_baseLocal + ((now - _baseTrue) * _rate)) / 1000);

    /// <summary>True time (µs) at which this clock reads <paramref name="localMs"/> (not before <paramref name="now"/>).</summary>
    public long TrueAt(long localMs, long now) => Math.Max(now, _baseTrue + (long)Math.Ceiling(((localMs * 1000.0) - _baseLocal) / _rate));

    /// <summary>Local duration <paramref name="ms"/> as true µs.</summary>
    public long Micros(long ms) => (long)Math.Ceiling(ms * 1000 / _rate);

    public void SetRate(long now, double rate)
    {
        _baseLocal += (now - _baseTrue) * _rate;
        _baseTrue = now;
        _rate = rate;
    }

    // ---------------------------------------------------------------- processes

    /// <summary>The manager runs (it may be paused).</summary>
    public bool ManagerUp { get; set; }

    /// <summary>Bumped at every manager start: events of an earlier life are ignored.</summary>
    public int Incarnation { get; set; }

    /// <summary>While set, the manager is stopped (SIGSTOP) until this true time.</summary>
    public long PausedUntil { get; set; }

    public bool Paused(long now) => PausedUntil > now;

    public InstanceNode? Node { get; set; }

    public RawNode? Raft { get; set; }

    public ControlStateMachine? StateMachine { get; set; }

    public MemoryRaftStorage Storage { get; } = new();

    public bool PersistScheduled { get; set; }

    public SimPostgres Pg { get; } = new(id);

    /// <summary>The fence file: survives manager restarts.</summary>
    public Epoch FencedEpoch { get; set; }

    public string? FenceReason { get; set; }

    /// <summary>The watchdog's armed deadline (this host's ms), null when disarmed.</summary>
    public long? WatchdogDeadline { get; set; }

    /// <summary>The watchdog process runs (it outlives a dead manager while armed).</summary>
    public bool WatchdogUp { get; set; }

    /// <summary>While set, the watchdog process is stopped (SIGSTOP) until this true time.</summary>
    public long WatchdogPausedUntil { get; set; }

    // ---------------------------------------------------------------- the host glue's own state

    public PostgresAction? Action { get; set; }

    /// <summary>Bumped at every postmaster start.</summary>
    public int PgLife { get; set; }

    /// <summary>The postmaster life whose exit the node was told of.</summary>
    public int ExitReported { get; set; }

    public long Fences { get; set; }

    public bool ObserveScheduled { get; set; }

    public bool ProbeBusy { get; set; }

    public Dictionary<ulong, (long RequestId, MemberId From, Epoch Epoch, Action<bool, string, Epoch> Reply)> PendingReads { get; } = [];

    public Dictionary<LogIndex, (Term Term, Action<bool, string> Done)> PendingProposals { get; } = [];

    public ulong NextReadContext { get; set; }

    public RaftRole LastRole { get; set; }

    public Term LastTerm { get; set; }

    public NodeId LastLeader { get; set; }

    public ControlState? LastState { get; set; }

    public long NextRequest { get; set; }

    /// <summary>The last position this member reported, to check it never goes back on the same data.</summary>
    public (uint Timeline, Lsn Flushed, int DataIncarnation)? LastReported { get; set; }

    /// <summary>Bumped whenever the data directory is replaced (clone, rewind, initdb, re-clone).</summary>
    public int DataIncarnation { get; set; }

    public RaftView View(bool holdsLease, long priorLeasesEndedMs) => Raft is null
        ? RaftView.Unknown
        : new RaftView(Raft.Role, Raft.Term, MemberId.FromNodeId(Raft.Leader), holdsLease, false, priorLeasesEndedMs);
}
