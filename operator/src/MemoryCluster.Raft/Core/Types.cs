namespace MemoryCluster.Raft;

/// <summary>What a log entry carries.</summary>
public enum EntryType
{
    Unknown = 0,

    /// <summary>A command for the replicated state machine.</summary>
    Command = 1,

    /// <summary>The empty entry a new leader appends in its own term.</summary>
    NoOp = 2,

    /// <summary>A complete new <see cref="ClusterConfig"/> (single-server change).</summary>
    Config = 3,
}

/// <summary>One entry of the replicated log.</summary>
public sealed record Entry(Term Term, LogIndex Index, EntryType Type, byte[] Data)
{
    public override string ToString() => $"{Index}@{Term}:{Type}";
}

/// <summary>What must survive a crash before any message that depends on it is sent.</summary>
public readonly record struct HardState(Term Term, NodeId Vote, LogIndex Commit)
{
    public static readonly HardState Empty;
}

/// <summary>A member of the cluster: voters decide, learners only receive the log.</summary>
public sealed record Member(NodeId Id, string Address, bool IsVoter);

/// <summary>
/// The cluster membership. <see cref="RetiredIds"/> holds every id ever removed, so that
/// an id is never reused.
/// </summary>
public sealed record ClusterConfig(IReadOnlyList<Member> Members, IReadOnlyList<NodeId> RetiredIds)
{
    public static readonly ClusterConfig Empty = new([], []);

    public IEnumerable<NodeId> Voters => Members.Where(m => m.IsVoter).Select(m => m.Id);

    public IEnumerable<NodeId> Learners => Members.Where(m => !m.IsVoter).Select(m => m.Id);

    public bool IsVoter(NodeId id) => Members.Any(m => m.Id == id && m.IsVoter);

    public bool Contains(NodeId id) => Members.Any(m => m.Id == id);

    public Member? Find(NodeId id) => Members.FirstOrDefault(m => m.Id == id);

    public static ClusterConfig FromVoters(IEnumerable<Member> voters) =>
        new(voters.Select(m => m with { IsVoter = true }).OrderBy(m => m.Id).ToArray(), []);

    public bool SameAs(ClusterConfig other) =>
        Members.SequenceEqual(other.Members) && RetiredIds.SequenceEqual(other.RetiredIds);

    public override string ToString() =>
        "[" + string.Join(",", Members.Select(m => m.IsVoter ? m.Id.ToString() : m.Id + "(learner)")) + "]";
}

/// <summary>The kind of a single-server membership change.</summary>
public enum MembershipChangeType
{
    Unknown = 0,
    AddLearner = 1,
    PromoteLearner = 2,
    RemoveNode = 3,
}

/// <summary>A single-server membership change. <see cref="Address"/> is used by AddLearner.</summary>
public sealed record MembershipChange(MembershipChangeType Type, NodeId Node, string Address = "");

/// <summary>A snapshot of the state machine at <see cref="Index"/>, with the configuration in force there.</summary>
public sealed record Snapshot(LogIndex Index, Term Term, ClusterConfig Config, byte[] Data);

/// <summary>What a node read back from its storage when it starts.</summary>
public sealed record PersistentState(HardState HardState, Snapshot? Snapshot, IReadOnlyList<Entry> Entries)
{
    public static readonly PersistentState Empty = new(HardState.Empty, null, []);
}

/// <summary>The role a node currently plays.</summary>
public enum RaftRole
{
    Unknown = 0,
    Follower = 1,
    PreCandidate = 2,
    Candidate = 3,
    Leader = 4,
}

/// <summary>Raft message kinds.</summary>
public enum MessageType
{
    Unknown = 0,
    PreVote = 1,
    PreVoteResponse = 2,
    Vote = 3,
    VoteResponse = 4,
    Append = 5,
    AppendResponse = 6,
    Heartbeat = 7,
    HeartbeatResponse = 8,
    InstallSnapshot = 9,
    TimeoutNow = 10,

    /// <summary>A follower asks the leader for a read index on behalf of its client.</summary>
    ReadIndex = 11,
    ReadIndexResponse = 12,
}

/// <summary>
/// One Raft message. Fields not used by a given <see cref="Type"/> are zero.
/// <see cref="Context"/> carries the heartbeat round (lease and ReadIndex) or, on a vote request,
/// <see cref="TransferContext"/> when the campaign follows a leadership transfer.
/// </summary>
public sealed record Message(
    MessageType Type,
    NodeId From,
    NodeId To,
    Term Term,
    Term LogTerm = default,
    LogIndex Index = default,
    IReadOnlyList<Entry>? Entries = null,
    LogIndex Commit = default,
    bool Reject = false,
    LogIndex RejectHint = default,
    ulong Context = 0,
    Snapshot? Snapshot = null)
{
    public const ulong TransferContext = 1;

    public IReadOnlyList<Entry> EntriesOrEmpty => Entries ?? [];

    public override string ToString()
    {
        var s = $"{From}->{To} {Type} term={Term}";
        switch (Type)
        {
            case MessageType.PreVote or MessageType.Vote:
                s += $" last={Index}@{LogTerm}" + (Context == TransferContext ? " transfer" : "");
                break;
            case MessageType.PreVoteResponse or MessageType.VoteResponse:
                s += Reject ? " reject" : " grant";
                break;
            case MessageType.Append:
                s += $" prev={Index}@{LogTerm} entries=[{string.Join(",", EntriesOrEmpty)}] commit={Commit}";
                break;
            case MessageType.AppendResponse:
                s += Reject ? $" reject index={Index} hint={RejectHint}" : $" index={Index}";
                break;
            case MessageType.Heartbeat:
                s += $" commit={Commit} round={Context}";
                break;
            case MessageType.HeartbeatResponse:
                s += $" round={Context}";
                break;
            case MessageType.InstallSnapshot:
                s += $" snapshot={Snapshot?.Index}@{Snapshot?.Term}";
                break;
            case MessageType.ReadIndex:
                s += $" ctx={Context}";
                break;
            case MessageType.ReadIndexResponse:
                s += $" ctx={Context} index={Index}";
                break;
            default:
                break;
        }

        return s;
    }
}

/// <summary>The result of a ReadIndex request: reads are linearizable once the state machine has applied <see cref="Index"/>.</summary>
public readonly record struct ReadState(LogIndex Index, ulong RequestContext);

/// <summary>
/// Everything the host must do, in this order: (1) persist <see cref="Snapshot"/>, <see cref="Entries"/>
/// (replacing any stored entries from the first index on) and <see cref="HardState"/>, with fsync;
/// (2) only then send <see cref="Messages"/>; (3) apply <see cref="CommittedEntries"/> (restore
/// <see cref="Snapshot"/> first); (4) call <c>Advance</c>. No Tick/Step/Propose between GetReady and Advance.
/// </summary>
public sealed record Ready(
    HardState? HardState,
    IReadOnlyList<Entry> Entries,
    Snapshot? Snapshot,
    IReadOnlyList<Message> Messages,
    IReadOnlyList<Entry> CommittedEntries,
    IReadOnlyList<ReadState> ReadStates)
{
    public bool MustPersist => HardState is not null || Entries.Count > 0 || Snapshot is not null;
}
