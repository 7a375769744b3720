using System.Text.Json.Serialization;

namespace MemoryCluster.Instance.Manager;

/// <summary>The JSON of <c>GET /status</c>: what this instance is, as its manager sees it.</summary>
public sealed record StatusDocument
{
    public required string Name { get; init; }

    public required ulong Id { get; init; }

    /// <summary>primary, replica or unknown.</summary>
    public required string Role { get; init; }

    /// <summary>Ready for its role: a primary taking writes, or a replica streaming.</summary>
    public required bool Ready { get; init; }

    public required bool PostgresRunning { get; init; }

    public required ulong Epoch { get; init; }

    /// <summary>Name of the primary the control state names.</summary>
    public string? Primary { get; init; }

    public string? PendingSwitchover { get; init; }

    public long? Timeline { get; init; }

    public string? WriteLsn { get; init; }

    public string? ReceiveLsn { get; init; }

    public string? ReplayLsn { get; init; }

    /// <summary>Bytes of WAL this replica has still to replay, against the primary's last reported position.</summary>
    public long? LagBytes { get; init; }

    public bool Streaming { get; init; }

    public required RaftStatusDocument Raft { get; init; }

    /// <summary>What the manager is doing or waiting for.</summary>
    public string? Activity { get; init; }

    public string? LastError { get; init; }

    [JsonPropertyName("lastErrorAt")]
    public DateTimeOffset? LastErrorAt { get; init; }

    /// <summary>How old the Postgres state shown is, in milliseconds.</summary>
    public long StateAgeMs { get; init; }

    /// <summary>Fenced as primary at the current epoch: its Postgres was stopped and will not run as primary again at this epoch.</summary>
    public bool Fenced { get; init; }

    /// <summary>The last epoch at which this instance fenced itself (0: never).</summary>
    public ulong FencedEpoch { get; init; }

    public string? FenceReason { get; init; }

    /// <summary>On the primary: milliseconds before it fences itself unless the lease is renewed.</summary>
    public long? LeaseRemainingMs { get; init; }

    /// <summary>The watchdog process: armed, disarmed or off.</summary>
    public string? Watchdog { get; init; }

    /// <summary>On the Raft leader, while the primary has failed: what it did or why it cannot promote.</summary>
    public string? Failover { get; init; }
}

/// <summary>The Raft part of <see cref="StatusDocument"/>.</summary>
public sealed record RaftStatusDocument(ulong Term, string Role, string? Leader, IReadOnlyList<string> Members, bool HoldsLease);

/// <summary>The body of <c>POST /switchover</c>.</summary>
public sealed record SwitchoverRequest(string To);

/// <summary>The answer to a request the manager refused or accepted.</summary>
public sealed record ManagerAnswer(bool Accepted, string Message, ulong? Epoch = null);
