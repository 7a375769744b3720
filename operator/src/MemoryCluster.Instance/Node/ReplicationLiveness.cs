namespace MemoryCluster.Instance.Node;

/// <summary>
/// Whether replication is alive, not only connected. PostgreSQL keeps showing a walsender as "streaming" on the
/// primary, and a walreceiver as "streaming" on the standby, while the standby's walreceiver is frozen (SIGSTOP, a
/// stuck disk): the primary's commits then wait on a standby that will never acknowledge them, and the standby's
/// status claims it follows. What tells the truth is how long ago something was last heard, each age computed by
/// PostgreSQL in the same query that reads it (<c>now()</c> of that server):
/// <list type="bullet">
/// <item>the primary: <c>now() - pg_stat_replication.reply_time</c>, the age of the standby's last status reply. The
/// manager sets <c>wal_receiver_status_interval = 1s</c>, so a live standby replies at least every second, at once
/// to WAL it receives, and at once to the walsender's keepalive request. <c>reply_time</c> is stamped by the
/// standby when it sends, so the age carries the difference between the two hosts' wall clocks as well; the
/// threshold leaves 2 s for it and for a loaded host.</item>
/// <item>the standby: <c>now() - pg_stat_wal_receiver.last_msg_receipt_time</c>, stamped by the standby itself (no
/// skew). On an idle cluster the primary may send nothing for a while; the walreceiver asks for a keepalive after
/// half its <c>wal_receiver_timeout</c> (5 s) of silence, so a live one hears from the primary at least every 2.5 s,
/// and ends itself at 5 s. The threshold, 4 s, sits between the two.</item>
/// </list>
/// Both thresholds are below the 5 s after which PostgreSQL itself drops the connection (<c>wal_sender_timeout</c>,
/// <c>wal_receiver_timeout</c>), which a frozen walreceiver never does on its side.
/// </summary>
public static class ReplicationLiveness
{
    /// <summary>A standby whose last reply is older than this does not count as streaming on the primary.</summary>
    public static readonly TimeSpan ReplyStaleAfter = TimeSpan.FromSeconds(3);

    /// <summary>A walreceiver that has heard nothing from the primary for longer than this is not streaming.</summary>
    public static readonly TimeSpan ReceiptStaleAfter = TimeSpan.FromSeconds(4);

    /// <summary>The managed <c>wal_receiver_status_interval</c>: how often a live standby replies at least.</summary>
    public const string StatusInterval = "1s";

    /// <summary>Whether the primary hears from this standby: streaming, and its last reply recent (none yet: not replying).</summary>
    public static bool IsReplying(StandbyObservation standby) =>
        standby is { State: "streaming", ReplyAgeSeconds: { } age } && age <= ReplyStaleAfter.TotalSeconds;

    /// <summary>The distinct other members that stream to this primary and reply (a pg_basebackup in progress adds walsenders of its own, under the same name).</summary>
    public static int ReplyingMembers(IEnumerable<StandbyObservation> standbys, NodeConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return standbys
            .Where(s => IsReplying(s) && IsOtherMember(s, config))
            .Select(s => s.Name)
            .Distinct(StringComparer.Ordinal)
            .Count();
    }

    /// <summary>
    /// Quorum mode, on a primary that hears from fewer than k standbys: since when (node clock, ms), when this read
    /// shows it. Rows of k distinct standbys still streaming with a last reply (the walsender keeps a silent
    /// standby's row until <c>wal_sender_timeout</c>: a cut, a frozen walreceiver) date it: when the k-th freshest
    /// of them went stale, its reply age less <see cref="ReplyStaleAfter"/> before <paramref name="now"/>. Otherwise
    /// (rows gone: a standby restarted or reconnects; catching up; never there) nothing dates it: null.
    /// </summary>
    public static long? StarvedSince(IEnumerable<StandbyObservation> standbys, NodeConfig config, long now)
    {
        ArgumentNullException.ThrowIfNull(config);
        var ages = standbys
            .Where(s => s is { State: "streaming", ReplyAgeSeconds: not null } && IsOtherMember(s, config))
            .GroupBy(s => s.Name, StringComparer.Ordinal)
            .Select(g => g.Min(s => s.ReplyAgeSeconds!.Value))
            .Order()
            .ToList();
        if (config.SyncStandbys < 1 || ages.Count < config.SyncStandbys)
        {
            return null;
        }

        var staleFor = ages[config.SyncStandbys - 1] - ReplyStaleAfter.TotalSeconds;
        return staleFor > 0 ? now - (long)(staleFor * 1000) : now;
    }

    /// <summary>A walsender's row of another member of the membership (a pg_basebackup or a stranger under another name is none).</summary>
    private static bool IsOtherMember(StandbyObservation standby, NodeConfig config) =>
        config.Members.Any(m => m.Name == standby.Name && m.Id != config.Self);

    /// <summary>Why the walreceiver does not stream, or null when it does: PostgreSQL says streaming and a message came recently (or none was due yet: it just started).</summary>
    public static string? ReceiverNotStreaming(PgObservation pg)
    {
        ArgumentNullException.ThrowIfNull(pg);
        if (pg.Receiver != WalReceiverStatus.Streaming)
        {
            return "the walreceiver is not streaming";
        }

        return pg.ReceiptAgeSeconds is { } age && age > ReceiptStaleAfter.TotalSeconds
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"the walreceiver has received nothing from the primary for {age:0.0} s (stale after {ReceiptStaleAfter.TotalSeconds:0} s): it may be frozen")
            : null;
    }

    /// <summary>Quorum mode: why the primary's commits are blocked (fewer than k standbys replying), or null.</summary>
    public static string? SynchronousCommitsBlocked(PgObservation pg, NodeConfig config)
    {
        ArgumentNullException.ThrowIfNull(pg);
        ArgumentNullException.ThrowIfNull(config);
        if (config.Mode != ReplicationMode.Quorum || pg.InRecovery)
        {
            return null;
        }

        var replying = ReplyingMembers(pg.Standbys, config);
        return replying >= config.SyncStandbys
            ? null
            : $"waiting for synchronous standbys: {replying} of {config.SyncStandbys} replying";
    }
}
