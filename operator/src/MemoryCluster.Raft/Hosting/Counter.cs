namespace MemoryCluster.Raft;

/// <summary>A monotonic counter that any thread may bump.</summary>
internal sealed class Counter
{
    private long _value;

    public long Value => Interlocked.Read(ref _value);

    public void Add(long n = 1) => Interlocked.Add(ref _value, n);
}
