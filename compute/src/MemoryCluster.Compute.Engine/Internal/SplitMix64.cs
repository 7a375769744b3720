namespace MemoryCluster.Compute.Engine.Internal;

/// <summary>A tiny seeded generator whose whole state is one ulong, so snapshots can carry it.</summary>
internal struct SplitMix64(ulong state)
{
    public ulong State = state;

    public ulong Next()
    {
        var z = State += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in (0, 1].</summary>
    public double NextUnitOpenZero() => ((Next() >> 11) + 1) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, bound).</summary>
    public int NextInt(int bound) => (int)((Next() >> 33) % (ulong)bound);
}
