namespace MemoryCluster.Raft.Tests;

/// <summary>
/// Tests in this collection run one after another: the CPU-bound simulation would otherwise starve the
/// real-socket clusters, whose 150 ms election timeouts are wall-clock time.
/// </summary>
[CollectionDefinition(Name)]
public sealed class TimingSensitive
{
    public const string Name = "Timing-sensitive";
}
