using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Api;

/// <summary>The JSON of <c>GET /status</c>: what this instance is, as its manager sees it now.</summary>
public sealed record StatusDocument
{
    public required string Name { get; init; }

    public required ulong Id { get; init; }

    /// <summary>What its PostgreSQL is now: primary (it may accept writes), replica (in recovery), stopped.</summary>
    public required InstanceRole Role { get; init; }

    /// <summary>Ready for its role: a primary taking writes at the current epoch under a lease (in quorum mode, with k standbys replying), or a replica streaming from the primary (heard from it recently).</summary>
    public required bool Ready { get; init; }

    /// <summary>Why it is not ready, when it is not (e.g. "waiting for synchronous standbys: 0 of 1 replying").</summary>
    public string? NotReadyWhy { get; init; }

    /// <summary>Quorum mode: a primary that takes writes while its commits wait for standbys (not ready; still the primary to follow and to write to).</summary>
    public bool WaitingForStandbys { get; init; }

    /// <summary>Primary: out of recovery at the current epoch under a lease, its line known, with a slot for every other member: replicas may stream from it, ready or not yet.</summary>
    public bool AcceptsStandbys { get; init; }

    public required bool PostgresRunning { get; init; }

    /// <summary>async or quorum.</summary>
    public ReplicationMode Mode { get; init; }

    /// <summary>Maintenance mode (the control state): automatic failover is paused; switchovers still work.</summary>
    public bool Maintenance { get; init; }

    /// <summary>
    /// Quorum mode: the k a failover counts with now: standbys of the membership proven to hold every acknowledged
    /// commit (lower than the membership's k for about a second after a membership raised k or a standby left, until
    /// the primary proves the configuration in force; 0: none proven); null in async mode.
    /// </summary>
    public int? QuorumK { get; init; }

    /// <summary>
    /// The highest control format this manager reads (what the Raft leader waits for from every voter before it
    /// raises the cluster's); absent from managers of releases before control formats (read as 0).
    /// </summary>
    public int? ControlFormat { get; init; }

    /// <summary>The control format the cluster writes now (as this member applied the control state).</summary>
    public int? ClusterControlFormat { get; init; }

    public required Epoch Epoch { get; init; }

    /// <summary>The primary the control state names.</summary>
    public string? Primary { get; init; }

    public string? PendingSwitchover { get; init; }

    public uint? Timeline { get; init; }

    /// <summary>The line of history its WAL is on: <c>TIMELINE[:ANCESTOR@END,...]</c>.</summary>
    public WalLine? Line { get; init; }

    /// <summary>Primary: WAL insert position.</summary>
    public Lsn? WriteLsn { get; init; }

    /// <summary>Primary: WAL flushed. Replica: WAL received and flushed; never goes back on the same data.</summary>
    public Lsn? FlushLsn { get; init; }

    /// <summary>Replica: WAL replayed.</summary>
    public Lsn? ReplayLsn { get; init; }

    /// <summary>Replica: the flushed position is exact (local WAL replayed since PostgreSQL started).</summary>
    public bool PositionSettled { get; init; }

    /// <summary>Replica: WAL still to replay against the primary's last reported position; null when unknown or when it cannot follow.</summary>
    public long? LagBytes { get; init; }

    public bool Streaming { get; init; }

    /// <summary>Replica: streaming, connecting, waitingForPrimary, diverged, rewinding, cloning; none otherwise.</summary>
    public FollowState Follow { get; init; }

    /// <summary>Why it cannot follow, when it cannot.</summary>
    public string? FollowWhy { get; init; }

    /// <summary>Replica: whom it is configured to stream from.</summary>
    public string? Upstream { get; init; }

    /// <summary>Primary: its standbys (pg_stat_replication).</summary>
    public IReadOnlyList<StandbyDocument> Standbys { get; init; } = [];

    public required RaftStatusDocument Raft { get; init; }

    /// <summary>What the manager is doing or waiting for.</summary>
    public string? Activity { get; init; }

    /// <summary>The last failure; cleared once the member works in its role again.</summary>
    public string? LastError { get; init; }

    public DateTimeOffset? LastErrorAt { get; init; }

    /// <summary>How old the PostgreSQL state shown is, in milliseconds, counted from when its query began.</summary>
    public long StateAgeMs { get; init; }

    /// <summary>How long that query took, in milliseconds: PostgreSQL read the state between <see cref="StateAgeMs"/> and <see cref="StateAgeMs"/> less this ago.</summary>
    public long StateQueryMs { get; init; }

    /// <summary>Fenced as primary at the current epoch: its PostgreSQL was stopped and will not run as primary again at this epoch.</summary>
    public bool Fenced { get; init; }

    /// <summary>The last epoch at which this instance fenced itself (0: never).</summary>
    public Epoch FencedEpoch { get; init; }

    public string? FenceReason { get; init; }

    /// <summary>On the primary: milliseconds before it fences itself unless the lease is renewed.</summary>
    public long? LeaseRemainingMs { get; init; }

    /// <summary>The watchdog: armed, disarmed or off.</summary>
    public string? Watchdog { get; init; }

    /// <summary>PostgreSQL may accept writes (started or promoted as primary and not verified stopped since).</summary>
    public bool MayWrite { get; init; }

    /// <summary>Quorum mode: this primary gave up its lease because no synchronous standby reaches it.</summary>
    public bool SteppingDown { get; init; }

    /// <summary>On the Raft leader, while the primary has failed: what it did or why it cannot promote.</summary>
    public string? Failover { get; init; }

    /// <summary>On the Raft leader: why it refused, for good, the forced failover asked at this epoch (the target holds less than the best candidate); null otherwise.</summary>
    public string? ForcedFailoverRefused { get; init; }

    /// <summary>On the Raft leader failing over in quorum mode from a primary that stopped renewing: that epoch; every replica stops streaming from its primary first (0: none).</summary>
    public Epoch DetachFrom { get; init; }

    /// <summary>Replica: the epoch whose primary it has stopped streaming from (its WAL receiver seen gone), so its position is all it can have acknowledged (0: none).</summary>
    public Epoch DetachedFrom { get; init; }

    /// <summary>The user's parameters (setting parameters-file); null when the manager has none.</summary>
    public ParametersDocument? Parameters { get; init; }
}

/// <summary>The user's postgresql.conf parameters as the manager applied them.</summary>
/// <param name="FileHash">Hash of the parameters file last read (null: missing).</param>
/// <param name="InForceHash">Hash of the checked copy PostgreSQL includes (null: none written yet).</param>
/// <param name="PendingRestart">PostgreSQL runs with values that differ from its configuration and takes them only at a restart.</param>
/// <param name="PendingRestartNames">Which (<c>pg_settings.pending_restart</c>).</param>
/// <param name="Ignored">Names in the file that the manager owns; left out.</param>
/// <param name="Error">Why the file last read is not in force (the copy in force stays); null when it is.</param>
/// <param name="AppliedAt">When the copy in force was last written.</param>
public sealed record ParametersDocument(
    string? FileHash,
    string? InForceHash,
    bool PendingRestart,
    IReadOnlyList<string> PendingRestartNames,
    IReadOnlyList<string> Ignored,
    string? Error,
    DateTimeOffset? AppliedAt);

/// <summary>One standby of the primary.</summary>
public sealed record StandbyDocument(string Name, string State, string SyncState, Lsn FlushLsn, Lsn ReplayLsn, double? ReplayLagSeconds, double? ReplyAgeSeconds = null, bool Replying = false);

/// <summary>The Raft part of <see cref="StatusDocument"/>.</summary>
public sealed record RaftStatusDocument(ulong Term, string Role, string? Leader, IReadOnlyList<string> Members, bool HoldsLease, bool Failed = false);

/// <summary>The body of <c>POST /switchover</c>; no target: the most caught-up streaming replica.</summary>
public sealed record SwitchoverRequest(string? To);

/// <summary>The body of <c>POST /maintenance</c>: <c>{"on": true}</c> pauses automatic failover, <c>{"on": false}</c> resumes it.</summary>
public sealed record MaintenanceRequest(bool? On);

/// <summary>The answer to a request the manager refused or accepted.</summary>
/// <param name="Accepted">Accepted (done or in progress), or refused.</param>
/// <param name="Message">What was done, what is awaited, or why it was refused.</param>
/// <param name="Epoch">The epoch, for a switchover.</param>
/// <param name="Done">For a membership change: true when in effect (200), false when accepted and in progress (202: ask again).</param>
public sealed record ManagerAnswer(bool Accepted, string Message, Epoch? Epoch = null, bool? Done = null);

/// <summary>The body of <c>POST /members</c>: the member to add (it joins as a learner, then becomes a voter).</summary>
public sealed record AddMemberRequest(ulong Id, string Name, string Host, int PgPort, int RaftPort, int HttpPort);

/// <summary>The JSON of <c>GET /members</c>: the committed Raft membership.</summary>
/// <param name="Members">Every member, by id.</param>
/// <param name="ChangePending">A membership change is proposed and not committed yet (as far as this member knows).</param>
/// <param name="Leader">The Raft leader, as this member believes.</param>
/// <param name="Commit">The Raft commit index this member knows.</param>
/// <param name="SyncStandbys">Quorum mode's k for this membership (⌊voters/2⌋).</param>
/// <param name="Removed">The ids of every member ever removed: never used again (a member coming back joins under a new id).</param>
public sealed record MembersDocument(IReadOnlyList<MemberDocument> Members, bool ChangePending, string? Leader, ulong Commit, int SyncStandbys, IReadOnlyList<ulong>? Removed = null);

/// <summary>One member of <see cref="MembersDocument"/>.</summary>
/// <param name="Id">Its Raft id.</param>
/// <param name="Name">Its instance name.</param>
/// <param name="Host">Where the other members reach it (null when not known here).</param>
/// <param name="PgPort">PostgreSQL's port.</param>
/// <param name="RaftPort">The Raft transport's port.</param>
/// <param name="HttpPort">Its manager's HTTP port.</param>
/// <param name="Voter">A voter, or a learner (joining: receives the log, does not vote).</param>
/// <param name="Match">On the Raft leader: how far the member's Raft log matches the leader's; null elsewhere.</param>
/// <param name="CaughtUp">On the Raft leader: the member's Raft log has reached the commit index; null elsewhere.</param>
/// <param name="Role">Its PostgreSQL's role as its last report showed it (null for this member's own, see /status).</param>
/// <param name="Streaming">Its last report showed it streaming from the primary.</param>
public sealed record MemberDocument(ulong Id, string Name, string? Host, int? PgPort, int? RaftPort, int? HttpPort, bool Voter, ulong? Match, bool? CaughtUp, InstanceRole? Role, bool? Streaming);

/// <summary>The JSON of <c>GET /history</c>: the changes of primary the control state keeps, as this member has applied it.</summary>
/// <param name="AppliedIndex">The Raft entry this member has applied: of several members' answers, the highest is the most complete.</param>
/// <param name="Epoch">The epoch now.</param>
/// <param name="Changes">The last changes of primary (at most 100), oldest first.</param>
public sealed record HistoryDocument(ulong AppliedIndex, Epoch Epoch, IReadOnlyList<PrimaryChangeDocument> Changes);

/// <summary>One change of primary in <see cref="HistoryDocument"/>.</summary>
/// <param name="Epoch">The epoch it began.</param>
/// <param name="At">When it was proposed, by the proposer's clock; null when a manager older than the history proposed it.</param>
/// <param name="From">The primary before (null for the first).</param>
/// <param name="To">The new primary.</param>
/// <param name="Reason">Why: bootstrap, switchover, switchoverAborted (resumed at a new epoch), failover, or unknown.</param>
public sealed record PrimaryChangeDocument(Epoch Epoch, DateTimeOffset? At, string? From, string To, PrimaryChangeReason Reason);

/// <summary>The JSON settings of the manager's API: camelCase, enums as camelCase strings, LSNs and lines in PostgreSQL's text forms.</summary>
public static class InstanceJson
{
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false));
        options.Converters.Add(new LsnConverter());
        options.Converters.Add(new WalLineConverter());
        options.Converters.Add(new EpochConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    private sealed class LsnConverter : JsonConverter<Lsn>
    {
        public override Lsn Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            Lsn.TryParse(reader.GetString(), out var lsn) ? lsn : throw new JsonException($"'{reader.GetString()}' is not a WAL position (X/Y)");

        public override void Write(Utf8JsonWriter writer, Lsn value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
    }

    private sealed class WalLineConverter : JsonConverter<WalLine>
    {
        public override WalLine Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            try
            {
                return WalLine.Parse(reader.GetString() ?? string.Empty);
            }
            catch (FormatException e)
            {
                throw new JsonException(e.Message, e);
            }
        }

        public override void Write(Utf8JsonWriter writer, WalLine value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
    }

    private sealed class EpochConverter : JsonConverter<Epoch>
    {
        public override Epoch Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => new(reader.GetUInt64());

        public override void Write(Utf8JsonWriter writer, Epoch value, JsonSerializerOptions options) => writer.WriteNumberValue(value.Value);
    }

    /// <summary>An instance of <see cref="StatusDocument"/> as another member's node reads it: typed, dated on the reader's clock.</summary>
    /// <param name="status">The document.</param>
    /// <param name="id">The member it came from.</param>
    /// <param name="askedAt">When the reader asked (its clock, ms): the state shown is no newer than that minus its age.</param>
    public static PeerView ToPeerView(StatusDocument status, MemberId id, long askedAt)
    {
        ArgumentNullException.ThrowIfNull(status);
        return new PeerView(
            id,
            true,
            status.Epoch,
            status.Role,
            status.Ready || status.WaitingForStandbys,
            status.PostgresRunning,
            status.Line,
            status.FlushLsn ?? Lsn.Zero,
            status.ReplayLsn ?? Lsn.Zero,
            status.PositionSettled,
            status.Follow,
            status.Streaming,
            status.FencedEpoch,
            askedAt - status.StateAgeMs,
            status.DetachFrom,
            status.DetachedFrom,
            status.ControlFormat ?? 0,
            status.AcceptsStandbys);
    }

    internal static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
