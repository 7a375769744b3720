namespace MemoryCluster.Raft;

/// <summary>
/// Durable Raft state. Every call returns only once the data is on stable storage (fsync), because the
/// host sends the messages of a Ready right after <see cref="Save"/> returns.
/// </summary>
public interface IRaftStorage : IDisposable
{
    /// <summary>Reads back the hard state, the latest snapshot and the entries after it.</summary>
    PersistentState Load();

    /// <summary>
    /// Persists, in this order, a snapshot received from the leader (replacing the whole log), the entries
    /// (replacing any stored entries from the first one's index on) and the hard state.
    /// </summary>
    void Save(HardState? hardState, IReadOnlyList<Entry> entries, Snapshot? snapshot);

    /// <summary>Persists a locally taken snapshot, then forgets the entries it covers.</summary>
    void Compact(Snapshot snapshot);
}

/// <summary>Storage in memory: for tests and the simulator. "Durable" means surviving a simulated crash.</summary>
public sealed class MemoryRaftStorage : IRaftStorage
{
    private readonly List<Entry> _entries = [];
    private HardState _hardState;
    private Snapshot? _snapshot;

    public PersistentState Load() => new(_hardState, _snapshot, _entries.ToArray());

    public void Save(HardState? hardState, IReadOnlyList<Entry> entries, Snapshot? snapshot)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (snapshot is not null)
        {
            _snapshot = snapshot;
            _entries.Clear();
        }

        if (entries.Count > 0)
        {
            var first = entries[0].Index;
            var keep = _entries.FindIndex(e => e.Index >= first);
            if (keep >= 0)
            {
                _entries.RemoveRange(keep, _entries.Count - keep);
            }

            var expected = _entries.Count > 0 ? _entries[^1].Index.Next() : (_snapshot?.Index ?? LogIndex.Zero).Next();
            if (first != expected)
            {
                throw new InvalidOperationException($"Entries must be contiguous: expected {expected}, got {first}.");
            }

            _entries.AddRange(entries);
        }

        if (hardState is { } hs)
        {
            _hardState = hs;
        }
    }

    public void Compact(Snapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        _snapshot = snapshot;
        _entries.RemoveAll(e => e.Index <= snapshot.Index);
    }

    public void Dispose()
    {
    }
}
