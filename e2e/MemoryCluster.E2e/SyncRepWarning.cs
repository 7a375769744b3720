using Npgsql;

namespace MemoryCluster.E2e;

/// <summary>
/// Watches one connection for PostgreSQL's warning that a commit's wait for synchronous replication was cancelled.
/// <para>
/// In quorum mode a commit waits until ⌊n/2⌋ standbys have flushed it. When that wait is cancelled — a cancel
/// request (which Npgsql sends when a command timeout fires, or when the command's token is cancelled), a
/// statement timeout, <c>pg_cancel_backend</c> — PostgreSQL still answers the commit with success, plus a WARNING
/// "canceling wait for synchronous replication due to user request": the commit is durable on that server only and
/// may be lost in a failover. So the writers (a) never let the driver cancel a command while a run is going on
/// (<c>CommandTimeout = 0</c>, and waits bounded on the client side: a slow attempt is left behind, not cancelled),
/// and (b) treat an insert during which this warning arrived as not acknowledged, and count it.
/// </para>
/// Create one per attempt (or <see cref="Reset"/> it before each command on a long-lived session): the notice
/// arrives with the command's answer, before the command's task completes.
/// </summary>
internal sealed class SyncRepWarning
{
    /// <summary>What both of PostgreSQL's messages about a cancelled synchronous-replication wait contain.</summary>
    public const string Text = "synchronous replication";

    private volatile bool _seen;

    public SyncRepWarning(NpgsqlConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        connection.Notice += OnNotice;
    }

    /// <summary>The warning arrived since this watcher was created or last reset.</summary>
    public bool Seen => _seen;

    public void Reset() => _seen = false;

    /// <summary>Whether a notice is the synchronous-replication warning.</summary>
    public static bool IsSyncRepWarning(PostgresNotice notice)
    {
        ArgumentNullException.ThrowIfNull(notice);
        return notice.InvariantSeverity == "WARNING" && notice.MessageText.Contains(Text, StringComparison.Ordinal);
    }

    private void OnNotice(object? sender, NpgsqlNoticeEventArgs e)
    {
        if (IsSyncRepWarning(e.Notice))
        {
            _seen = true;
        }
    }
}

/// <summary>An insert that returned success with the synchronous-replication warning: not acknowledged.</summary>
internal sealed class SyncRepWarningException(long id, int port)
    : Exception($"insert {id} on port {port} returned with the warning that its wait for synchronous replication was cancelled: not acknowledged");
