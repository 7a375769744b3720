namespace MemoryCluster.Compute.Engine.Graph;

/// <summary>
/// Distinct (valid_from, valid_to) intervals, so an edge stores a 4-byte index instead of 16 bytes.
/// Index 0 is "always valid" (unbounded both ways), the case of most edges.
/// </summary>
internal sealed class ValidityTable
{
    private readonly Dictionary<(long From, long To), int> _index = new() { [(long.MinValue, long.MaxValue)] = 0 };
    private readonly List<long> _from = [long.MinValue];
    private readonly List<long> _to = [long.MaxValue];

    public int Count => _from.Count;

    public int IndexOf(long from, long to)
    {
        if (!_index.TryGetValue((from, to), out var id))
        {
            id = _from.Count;
            _index.Add((from, to), id);
            _from.Add(from);
            _to.Add(to);
        }

        return id;
    }

    public long From(int id) => _from[id];

    public long To(int id) => _to[id];

    public bool IsVisible(int id, long? asOf)
    {
        if (id == 0)
        {
            return true;
        }

        return asOf is { } t ? _from[id] <= t && t < _to[id] : _to[id] == long.MaxValue;
    }
}
