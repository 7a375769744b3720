namespace MemoryCluster.Compute.Engine.Graph;

/// <summary>A set of predicate ids as a bitmap, so the per-edge check is a shift and a mask.</summary>
public sealed class PredicateSet
{
    private readonly ulong[] _bits;

    /// <summary>Creates a set holding <paramref name="predicates"/>.</summary>
    public PredicateSet(IEnumerable<int> predicates)
    {
        ArgumentNullException.ThrowIfNull(predicates);
        var max = -1;
        foreach (var p in predicates)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(p);
            max = Math.Max(max, p);
        }

        _bits = new ulong[(max + 64) / 64];
        foreach (var p in predicates)
        {
            _bits[p >> 6] |= 1UL << (p & 63);
        }
    }

    /// <summary>Creates a set from ids.</summary>
    public static PredicateSet Of(params int[] predicates) => new(predicates);

    /// <summary>True when the set holds <paramref name="predicate"/>.</summary>
    public bool Contains(int predicate)
    {
        var word = predicate >> 6;
        return (uint)word < (uint)_bits.Length && (_bits[word] & (1UL << (predicate & 63))) != 0;
    }
}
