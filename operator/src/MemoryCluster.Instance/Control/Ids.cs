using System.Globalization;
using MemoryCluster.Raft;

namespace MemoryCluster.Instance.Control;

/// <summary>
/// The fencing token of the control state: +1 on every change of primary. A primary fences itself when it
/// sees a newer epoch, and every control command is a compare-and-set on it.
/// </summary>
public readonly record struct Epoch(ulong Value) : IComparable<Epoch>
{
    /// <summary>Before the first primary was chosen.</summary>
    public static readonly Epoch Zero;

    public Epoch Next() => new(Value + 1);

    public int CompareTo(Epoch other) => Value.CompareTo(other.Value);

    public static bool operator <(Epoch a, Epoch b) => a.Value < b.Value;

    public static bool operator >(Epoch a, Epoch b) => a.Value > b.Value;

    public static bool operator <=(Epoch a, Epoch b) => a.Value <= b.Value;

    public static bool operator >=(Epoch a, Epoch b) => a.Value >= b.Value;

    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Identity of a cluster member in the control state (primary, standbys, switchover target). It is the
/// member's Raft <see cref="NodeId"/>: zero means "none", and ids are never reused.
/// </summary>
public readonly record struct MemberId(ulong Value) : IComparable<MemberId>
{
    public static readonly MemberId None;

    public bool IsNone => Value == 0;

    public NodeId ToNodeId() => new(Value);

    public static MemberId FromNodeId(NodeId id) => new(id.Value);

    public int CompareTo(MemberId other) => Value.CompareTo(other.Value);

    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}
