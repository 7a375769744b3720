namespace MemoryCluster.Compute.Engine.Internal;

/// <summary>
/// Visited marks stamped with an epoch: starting a new search is one increment, not a clear.
/// The array is cleared only when the 16-bit epoch wraps (once every 65,535 searches).
/// </summary>
internal sealed class VisitedSet
{
    private ushort[] _marks = new ushort[1024];
    private ushort _epoch;

    public void Reset(int size)
    {
        if (_marks.Length < size)
        {
            _marks = new ushort[Math.Max(size, _marks.Length * 2)];
            _epoch = 0;
        }

        _epoch++;
        if (_epoch == 0)
        {
            Array.Clear(_marks);
            _epoch = 1;
        }
    }

    /// <summary>Marks <paramref name="id"/>; false when it was already marked in this epoch.</summary>
    public bool TryVisit(int id)
    {
        ref var mark = ref _marks[id];
        if (mark == _epoch)
        {
            return false;
        }

        mark = _epoch;
        return true;
    }

    public bool IsVisited(int id) => _marks[id] == _epoch;
}
