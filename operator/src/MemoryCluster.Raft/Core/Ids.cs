using System.Globalization;

namespace MemoryCluster.Raft;

/// <summary>Identity of a Raft node. Zero means "none"; ids are never reused.</summary>
public readonly record struct NodeId(ulong Value) : IComparable<NodeId>
{
    public static readonly NodeId None;

    public bool IsNone => Value == 0;

    public int CompareTo(NodeId other) => Value.CompareTo(other.Value);

    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A Raft term.</summary>
public readonly record struct Term(ulong Value) : IComparable<Term>
{
    public static readonly Term Zero;

    public Term Next() => new(Value + 1);

    public int CompareTo(Term other) => Value.CompareTo(other.Value);

    public static bool operator <(Term a, Term b) => a.Value < b.Value;

    public static bool operator >(Term a, Term b) => a.Value > b.Value;

    public static bool operator <=(Term a, Term b) => a.Value <= b.Value;

    public static bool operator >=(Term a, Term b) => a.Value >= b.Value;

    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A position in the Raft log. Index 0 is the empty prefix.</summary>
public readonly record struct LogIndex(ulong Value) : IComparable<LogIndex>
{
    public static readonly LogIndex Zero;

    public LogIndex Next() => new(Value + 1);

    public LogIndex Previous() => new(Value == 0 ? 0 : Value - 1);

    public int CompareTo(LogIndex other) => Value.CompareTo(other.Value);

    public static LogIndex Min(LogIndex a, LogIndex b) => a.Value <= b.Value ? a : b;

    public static LogIndex Max(LogIndex a, LogIndex b) => a.Value >= b.Value ? a : b;

    public static bool operator <(LogIndex a, LogIndex b) => a.Value < b.Value;

    public static bool operator >(LogIndex a, LogIndex b) => a.Value > b.Value;

    public static bool operator <=(LogIndex a, LogIndex b) => a.Value <= b.Value;

    public static bool operator >=(LogIndex a, LogIndex b) => a.Value >= b.Value;

    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}
