using MemoryCluster.Instance.Control;

namespace MemoryCluster.Instance.Postgres;

/// <summary>
/// The history files the manager writes before a promotion at epoch e, for the timeline ids between the data's
/// timeline and e (docs/failover.md, "Timeline ids are epochs"). PostgreSQL gives a promoted server the first id
/// after the consecutive history files it finds, so it chooses e.
/// </summary>
/// <remarks>
/// A placeholder must never be followed. With <c>recovery_target_timeline = latest</c> the startup process rescans
/// for the newest timeline whenever streaming fails (every <c>wal_retrieve_retry_interval</c> while the old primary
/// is gone) and once more when the promotion is signalled, and switches to a timeline whose history contains its
/// own and forks at or after its replay position. The first placeholders copied the current timeline's history and
/// ended it at the replay position read just before the promotion: PostgreSQL adopted them whenever replay had not
/// moved on, and the real timeline e then recorded the old timeline as ending there, before the WAL the promoted
/// member went on to replay, so replicas holding that WAL were told they had forked off and were rewound for
/// nothing. A placeholder now names no parent at all: PostgreSQL refuses it at every rescan ("new timeline N is not
/// a child of database system timeline M"), whatever the positions, and the node ignores that refusal on the member
/// named primary (it follows no one).
/// </remarks>
public static class TimelinePlaceholders
{
    /// <summary>What marks a history file as one of these (PostgreSQL and <see cref="WalLine.FromHistoryFile"/> skip '#' lines).</summary>
    public const string Marker = "memorycluster timeline placeholder";

    /// <summary>A placeholder's whole content: a comment, so it names no parent timeline.</summary>
    public const string Content = "# " + Marker + ": reserves this id so that a promotion takes its epoch's id; it names no parent timeline, so PostgreSQL never follows it\n";

    /// <summary>Whether a history file's text is a placeholder.</summary>
    public static bool IsPlaceholder(string text) => text?.Contains(Marker, StringComparison.Ordinal) == true;

    /// <summary>The ids to write before a promotion at <paramref name="epoch"/> of data on <paramref name="data"/>: every id between them that has no history file yet.</summary>
    public static IReadOnlyList<TimelineId> ToWrite(TimelineId data, Epoch epoch, IEnumerable<TimelineId> existing)
    {
        var have = existing.ToHashSet();
        var ids = new List<TimelineId>();
        for (var id = (ulong)data.Value + 1; id < epoch.Value && id <= uint.MaxValue; id++)
        {
            var tli = new TimelineId((uint)id);
            if (!have.Contains(tli))
            {
                ids.Add(tli);
            }
        }

        return ids;
    }

    /// <summary>
    /// The placeholders to remove before PostgreSQL starts: those above the data's timeline that no real history
    /// above them makes part of a chain (a promotion that never came, its placeholders left behind). Started with
    /// one of them as the newest timeline, PostgreSQL would take it as its recovery target and refuse to start.
    /// Placeholders below a real, newer history (fetched from a primary that was promoted past them) stay: they lead
    /// PostgreSQL to that timeline.
    /// </summary>
    public static IReadOnlyList<TimelineId> Stale(TimelineId data, IReadOnlyDictionary<TimelineId, bool> historiesArePlaceholders)
    {
        ArgumentNullException.ThrowIfNull(historiesArePlaceholders);
        var newestReal = historiesArePlaceholders.Where(h => !h.Value).Select(h => h.Key.Value).DefaultIfEmpty(data.Value).Max();
        return [.. historiesArePlaceholders.Where(h => h.Value && h.Key.Value > data.Value && h.Key.Value > newestReal).Select(h => h.Key).OrderBy(t => t.Value)];
    }
}
