using System.Globalization;
using System.Text;

namespace MemoryCluster.Instance.Postgres;

/// <summary>A PostgreSQL timeline id (1 for a new cluster, a new one at every promotion).</summary>
public readonly record struct TimelineId(uint Value) : IComparable<TimelineId>
{
    public static readonly TimelineId First = new(1);

    public bool IsNone => Value == 0;

    public int CompareTo(TimelineId other) => Value.CompareTo(other.Value);

    public static bool operator <(TimelineId a, TimelineId b) => a.Value < b.Value;

    public static bool operator >(TimelineId a, TimelineId b) => a.Value > b.Value;

    public static bool operator <=(TimelineId a, TimelineId b) => a.Value <= b.Value;

    public static bool operator >=(TimelineId a, TimelineId b) => a.Value >= b.Value;

    /// <summary>The name of its history file in pg_wal: <c>0000000N.history</c>.</summary>
    public string HistoryFileName => string.Create(CultureInfo.InvariantCulture, $"{Value:X8}.history");

    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One ancestor of a timeline: <paramref name="Timeline"/> ended (a newer one branched off) at <paramref name="End"/>.</summary>
public readonly record struct TimelineSwitch(TimelineId Timeline, Lsn End);

/// <summary>How a data directory's WAL relates to another line of history.</summary>
public enum LineRelation
{
    Unknown = 0,

    /// <summary>Its WAL is a prefix of the other line: it can follow that line by streaming.</summary>
    OnLine = 1,

    /// <summary>
    /// It is on an ancestor timeline of the other line but has replayed WAL of that ancestor past the point where
    /// the other line branched off: PostgreSQL refuses to follow ("forked off ... before current recovery point"),
    /// so it needs pg_rewind. Its WAL up to the branch point is still shared.
    /// </summary>
    BeyondFork = 2,

    /// <summary>A different branch: its history disagrees with the other line's (a timeline the other line does not have, or the same timeline id with another origin).</summary>
    OffLine = 3,
}

/// <summary>
/// The line of history a data directory's WAL lies on: its current timeline and that timeline's ancestors with
/// the positions where each ended (the content of PostgreSQL's <c>N.history</c> file). Two lines agree where their
/// ancestor lists agree; timeline ids alone are not enough, since two members that each promoted without knowing
/// of the other can both create timeline N.
/// </summary>
public sealed record WalLine(TimelineId Timeline, IReadOnlyList<TimelineSwitch> Ancestors)
{
    public static readonly WalLine Initial = new(TimelineId.First, []);

    /// <summary>
    /// Whether its ancestors are known: every timeline after the first has a history file naming at least its parent,
    /// so a later one without ancestors was read before its history file (a promotion seen mid-way).
    /// </summary>
    public bool HistoryKnown => Timeline == TimelineId.First || Ancestors.Count > 0;

    /// <summary>Where <paramref name="timeline"/> ends on this line; null when it is the current timeline or not on it.</summary>
    public Lsn? EndOf(TimelineId timeline)
    {
        foreach (var a in Ancestors)
        {
            if (a.Timeline == timeline)
            {
                return a.End;
            }
        }

        return null;
    }

    /// <summary>
    /// How WAL on <paramref name="other"/>, flushed to <paramref name="flushed"/> and replayed to
    /// <paramref name="replayed"/>, relates to this line, and how far along this line it goes (the effective position).
    /// </summary>
    public (LineRelation Relation, Lsn Effective) Relate(WalLine other, Lsn flushed, Lsn replayed)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Ancestors.Count > Ancestors.Count)
        {
            return (LineRelation.OffLine, Lsn.Zero);
        }

        for (var i = 0; i < other.Ancestors.Count; i++)
        {
            if (other.Ancestors[i] != Ancestors[i])
            {
                return (LineRelation.OffLine, Lsn.Zero);
            }
        }

        if (other.Timeline == Timeline)
        {
            return other.Ancestors.Count == Ancestors.Count ? (LineRelation.OnLine, flushed) : (LineRelation.OffLine, Lsn.Zero);
        }

        // The other WAL is on one of this line's ancestors: shared up to where that ancestor ended here.
        if (other.Ancestors.Count == Ancestors.Count)
        {
            return (LineRelation.OffLine, Lsn.Zero);
        }

        var next = Ancestors[other.Ancestors.Count];
        if (next.Timeline != other.Timeline)
        {
            return (LineRelation.OffLine, Lsn.Zero);
        }

        return (replayed > next.End ? LineRelation.BeyondFork : LineRelation.OnLine, Lsn.Min(flushed, next.End));
    }

    /// <summary>Reads a history file (<c>N.history</c>: one line per ancestor, <c>parentTLI switchpoint reason</c>).</summary>
    public static WalLine FromHistoryFile(TimelineId timeline, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ancestors = new List<TimelineSwitch>();
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var fields = line.Split(['\t', ' '], 3, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2 || !uint.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var parent) || !Lsn.TryParse(fields[1], out var end))
            {
                throw new FormatException($"{timeline.HistoryFileName} line {number}: expected 'TIMELINE X/Y reason', not '{line}'");
            }

            ancestors.Add(new TimelineSwitch(new TimelineId(parent), end));
        }

        return new WalLine(timeline, ancestors);
    }

    /// <summary>The compact form used in reports: <c>3:1@0/3000000,2@0/5000060</c> (timeline, then its ancestors).</summary>
    public override string ToString()
    {
        var text = new StringBuilder().Append(Timeline.Value.ToString(CultureInfo.InvariantCulture));
        for (var i = 0; i < Ancestors.Count; i++)
        {
            text.Append(i == 0 ? ':' : ',').Append(Ancestors[i].Timeline.Value.ToString(CultureInfo.InvariantCulture)).Append('@').Append(Ancestors[i].End.ToString());
        }

        return text.ToString();
    }

    /// <summary>Parses <see cref="ToString"/>'s form.</summary>
    public static WalLine Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var head = colon < 0 ? text : text[..colon];
        if (!uint.TryParse(head, NumberStyles.None, CultureInfo.InvariantCulture, out var timeline) || timeline == 0)
        {
            throw new FormatException($"'{text}' is not a WAL line (TIMELINE[:TLI@X/Y,...])");
        }

        var ancestors = new List<TimelineSwitch>();
        if (colon >= 0)
        {
            foreach (var part in text[(colon + 1)..].Split(','))
            {
                var at = part.IndexOf('@', StringComparison.Ordinal);
                if (at <= 0 || !uint.TryParse(part.AsSpan(0, at), NumberStyles.None, CultureInfo.InvariantCulture, out var tli) || !Lsn.TryParse(part[(at + 1)..], out var end))
                {
                    throw new FormatException($"'{text}' is not a WAL line: bad ancestor '{part}'");
                }

                ancestors.Add(new TimelineSwitch(new TimelineId(tli), end));
            }
        }

        return new WalLine(new TimelineId(timeline), ancestors);
    }

    public bool Equals(WalLine? other) => other is not null && Timeline == other.Timeline && Ancestors.SequenceEqual(other.Ancestors);

    public override int GetHashCode() => HashCode.Combine(Timeline, Ancestors.Count);
}
