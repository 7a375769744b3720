using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using Prometheus;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// The process's one metrics exposition (<c>GET /metrics</c>, Prometheus text format): the member's state (from the
/// node's status, read at scrape time), Raft's counters, and PostgreSQL's own figures as the
/// <see cref="PostgresMetricsCollector"/> last read them. Every family has HELP and TYPE; counters end in
/// <c>_total</c> (checked with <c>promtool check metrics</c> in the tests).
/// </summary>
internal sealed class InstanceMetrics
{
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Gauge _up;
    private readonly Gauge _ready;
    private readonly Gauge _isPrimary;
    private readonly Gauge _mayWrite;
    private readonly Gauge _epoch;
    private readonly Gauge _timeline;
    private readonly Gauge _replayLag;
    private readonly Gauge _flushLsn;
    private readonly Gauge _settled;
    private readonly Gauge _leaseRemaining;
    private readonly Gauge _watchdogArmed;
    private readonly Gauge _fenced;
    private readonly Gauge _diverged;
    private readonly Gauge _raftTerm;
    private readonly Gauge _raftLeader;
    private readonly Gauge _raftLease;
    private readonly Gauge _raftFailed;
    private readonly Counter _raftProposals;
    private readonly Counter _raftApplied;
    private readonly Counter _raftElectionsWon;
    private readonly Counter _raftMessages;
    private readonly Counter _raftSnapshots;

    public InstanceMetrics(StatusReporter status, RaftService raft, InstanceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var f = Metrics.WithCustomRegistry(_registry).WithLabels(new Dictionary<string, string> { ["instance_name"] = options.Name });
        _up = f.CreateGauge("memorycluster_instance_postgres_up", "1 when PostgreSQL runs.");
        _ready = f.CreateGauge("memorycluster_instance_ready", "1 when ready for its role (primary taking writes under a lease, or replica streaming from the primary).");
        _isPrimary = f.CreateGauge("memorycluster_instance_is_primary", "1 when PostgreSQL runs out of recovery (or may: started or promoted as primary).");
        _mayWrite = f.CreateGauge("memorycluster_instance_may_write", "1 from the moment PostgreSQL is started or promoted as primary until it is verified stopped.");
        _epoch = f.CreateGauge("memorycluster_instance_epoch", "The fencing epoch of the control state this member has applied.");
        _timeline = f.CreateGauge("memorycluster_instance_timeline", "The PostgreSQL timeline its WAL is on.");
        _replayLag = f.CreateGauge("memorycluster_instance_replay_lag_bytes", "Replica: WAL bytes still to replay against the primary's last reported position.");
        _flushLsn = f.CreateGauge("memorycluster_instance_flushed_wal_position_bytes", "WAL flushed (primary) or received and flushed (replica), as a byte position.");
        _settled = f.CreateGauge("memorycluster_instance_position_settled", "Replica: 1 when its reported WAL position is exact (local WAL replayed since the start).");
        _leaseRemaining = f.CreateGauge("memorycluster_instance_lease_remaining_seconds", "Primary: seconds until it fences itself unless the lease is renewed.");
        _watchdogArmed = f.CreateGauge("memorycluster_instance_watchdog_armed", "1 while the watchdog deadline is armed.");
        _fenced = f.CreateGauge("memorycluster_instance_fenced", "1 when fenced as primary at the current epoch.");
        _diverged = f.CreateGauge("memorycluster_instance_diverged", "Replica: 1 when its WAL cannot follow the primary's timeline without a rewind.");
        _raftTerm = f.CreateGauge("memorycluster_raft_term", "The current Raft term.");
        _raftLeader = f.CreateGauge("memorycluster_raft_is_leader", "1 on the Raft leader.");
        _raftLease = f.CreateGauge("memorycluster_raft_holds_lease", "1 while this Raft leader holds its leader lease.");
        _raftFailed = f.CreateGauge("memorycluster_raft_host_failed", "1 when the Raft host stopped (its storage failed).");
        _raftProposals = f.CreateCounter("memorycluster_raft_proposals_total", "Proposals made on this node.");
        _raftApplied = f.CreateCounter("memorycluster_raft_entries_applied_total", "Entries applied to the control state.");
        _raftElectionsWon = f.CreateCounter("memorycluster_raft_elections_won_total", "Times this node became Raft leader.");
        _raftMessages = f.CreateCounter("memorycluster_raft_messages_received_total", "Raft messages received and stepped.");
        _raftSnapshots = f.CreateCounter("memorycluster_raft_snapshots_total", "Raft snapshots taken.");
        Postgres = new PostgresMetrics(f);
        _registry.AddBeforeCollectCallback(() =>
        {
            var s = status.Node();
            _up.Set(s.Running ? 1 : 0);
            _ready.Set(s.Ready ? 1 : 0);
            _isPrimary.Set(s.Role == InstanceRole.Primary ? 1 : 0);
            _mayWrite.Set(s.MayWrite ? 1 : 0);
            _epoch.Set(s.Control.Epoch.Value);
            _timeline.Set(s.Line?.Timeline.Value ?? 0);
            _replayLag.Set(s.LagBytes ?? 0);
            _flushLsn.Set(s.FlushLsn.Value);
            _settled.Set(s.PositionSettled ? 1 : 0);
            _leaseRemaining.Set((s.LeaseRemainingMs ?? 0) / 1000.0);
            _watchdogArmed.Set(s.WatchdogArmed ? 1 : 0);
            _fenced.Set(s.FenceReason is not null ? 1 : 0);
            _diverged.Set(s.Follow == FollowState.Diverged ? 1 : 0);
            _raftTerm.Set(s.Raft.Term.Value);
            _raftLeader.Set(s.Raft.IsLeader ? 1 : 0);
            _raftLease.Set(raft.HoldsLease ? 1 : 0);
            _raftFailed.Set(raft.Fault is null ? 0 : 1);
            var c = raft.Counters;
            _raftProposals.IncTo(c.Proposals);
            _raftApplied.IncTo(c.EntriesApplied);
            _raftElectionsWon.IncTo(c.TimesBecameLeader);
            _raftMessages.IncTo(c.MessagesStepped);
            _raftSnapshots.IncTo(c.SnapshotsTaken);
        });
    }

    /// <summary>PostgreSQL's figures, set by the collector.</summary>
    public PostgresMetrics Postgres { get; }

    /// <summary>Writes the exposition (text format 0.0.4).</summary>
    public Task WriteAsync(Stream stream, CancellationToken cancellationToken) => _registry.CollectAndExportAsTextAsync(stream, cancellationToken);
}

/// <summary>PostgreSQL's figures as people read them from postgres_exporter or CloudNativePG's instance manager.</summary>
internal sealed class PostgresMetrics
{
    private readonly Dictionary<string, double> _last = [];

    internal PostgresMetrics(IMetricFactory f)
    {
        Up = f.CreateGauge("memorycluster_pg_stats_up", "1 when the last read of PostgreSQL's statistics succeeded.");
        ScrapeSeconds = f.CreateGauge("memorycluster_pg_stats_read_duration_seconds", "How long the last read of PostgreSQL's statistics took.");
        ReadErrors = f.CreateCounter("memorycluster_pg_stats_read_errors_total", "Reads of PostgreSQL's statistics that failed.");
        Backends = f.CreateGauge("memorycluster_pg_backends", "Client backends by state (pg_stat_activity).", new GaugeConfiguration { LabelNames = ["state"] });
        Commits = f.CreateCounter("memorycluster_pg_transactions_committed_total", "Transactions committed, all databases (pg_stat_database).");
        Rollbacks = f.CreateCounter("memorycluster_pg_transactions_rolled_back_total", "Transactions rolled back, all databases (pg_stat_database).");
        Deadlocks = f.CreateCounter("memorycluster_pg_deadlocks_total", "Deadlocks detected, all databases (pg_stat_database).");
        DatabaseSize = f.CreateGauge("memorycluster_pg_database_size_bytes", "Size of each database.", new GaugeConfiguration { LabelNames = ["datname"] });
        WalBytes = f.CreateCounter("memorycluster_pg_wal_generated_bytes_total", "WAL generated by this server (pg_stat_wal).");
        CheckpointsTimed = f.CreateCounter("memorycluster_pg_checkpoints_timed_total", "Scheduled checkpoints (pg_stat_bgwriter).");
        CheckpointsRequested = f.CreateCounter("memorycluster_pg_checkpoints_requested_total", "Requested checkpoints (pg_stat_bgwriter).");
        OldestTransaction = f.CreateGauge("memorycluster_pg_oldest_transaction_age_seconds", "Age of the oldest open transaction of a client backend (0 when none).");
        ReplicationLagBytes = f.CreateGauge("memorycluster_pg_replication_lag_bytes", "Primary: WAL each standby has still to replay (pg_stat_replication).", new GaugeConfiguration { LabelNames = ["standby"] });
        ReplicationLagSeconds = f.CreateGauge("memorycluster_pg_replication_lag_seconds", "Primary: each standby's replay lag in time (pg_stat_replication.replay_lag).", new GaugeConfiguration { LabelNames = ["standby"] });
    }

    public Gauge Up { get; }

    public Gauge ScrapeSeconds { get; }

    public Counter ReadErrors { get; }

    public Gauge Backends { get; }

    public Counter Commits { get; }

    public Counter Rollbacks { get; }

    public Counter Deadlocks { get; }

    public Gauge DatabaseSize { get; }

    public Counter WalBytes { get; }

    public Counter CheckpointsTimed { get; }

    public Counter CheckpointsRequested { get; }

    public Gauge OldestTransaction { get; }

    public Gauge ReplicationLagBytes { get; }

    public Gauge ReplicationLagSeconds { get; }

    /// <summary>
    /// Adds to <paramref name="counter"/> what PostgreSQL's cumulative <paramref name="value"/> grew by since the
    /// last read; a value that went down (statistics reset by a crash restart or a new server) counts from zero.
    /// </summary>
    public void Advance(Counter counter, string key, double value)
    {
        ArgumentNullException.ThrowIfNull(counter);
        var delta = _last.TryGetValue(key, out var last) && value >= last ? value - last : value;
        _last[key] = value;
        if (delta > 0)
        {
            counter.Inc(delta);
        }
    }

    /// <summary>Replaces a labelled gauge's series with <paramref name="values"/> (series no longer present are removed).</summary>
    public static void SetAll(Gauge gauge, IReadOnlyDictionary<string, double> values)
    {
        ArgumentNullException.ThrowIfNull(gauge);
        ArgumentNullException.ThrowIfNull(values);
        foreach (var labels in gauge.GetAllLabelValues().ToList())
        {
            if (!values.ContainsKey(labels[0]))
            {
                gauge.RemoveLabelled(labels);
            }
        }

        foreach (var (label, value) in values)
        {
            gauge.WithLabels(label).Set(value);
        }
    }

    internal static double Bytes(Lsn lsn) => lsn.Value;
}
