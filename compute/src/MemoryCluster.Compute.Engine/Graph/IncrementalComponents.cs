namespace MemoryCluster.Compute.Engine.Graph;

/// <summary>
/// Union–find with union by size and path halving: near-constant time per link, so components
/// stay current as identity links arrive. It cannot split; the graph rebuilds it after a removal. Each component's
/// members also form a cycle through a next array (a union swaps the two roots' successors, which joins the two
/// cycles), so a component's members are listed in time proportional to its size, not to the elements tracked.
/// </summary>
public sealed class IncrementalComponents
{
    private int[] _parent = [];
    private int[] _size = [];
    private int[] _next = [];
    private int _count;

    /// <summary>Elements tracked.</summary>
    public int Count => _count;

    /// <summary>Number of components among the tracked elements.</summary>
    public int ComponentCount { get; private set; }

    internal long MemoryBytes => 4L * (_parent.Length + _size.Length + _next.Length);

    /// <summary>Tracks elements 0 .. <paramref name="count"/> - 1 (new ones start alone).</summary>
    public void EnsureSize(int count)
    {
        if (count <= _count)
        {
            return;
        }

        if (count > _parent.Length)
        {
            var capacity = Math.Max(count, _parent.Length * 2);
            Array.Resize(ref _parent, capacity);
            Array.Resize(ref _size, capacity);
            Array.Resize(ref _next, capacity);
        }

        for (var i = _count; i < count; i++)
        {
            _parent[i] = i;
            _size[i] = 1;
            _next[i] = i;
        }

        ComponentCount += count - _count;
        _count = count;
    }

    /// <summary>Forgets every link.</summary>
    public void Clear()
    {
        _count = 0;
        ComponentCount = 0;
    }

    /// <summary>The representative of <paramref name="x"/>'s component.</summary>
    public int Find(int x)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(x);
        if (x >= _count)
        {
            return x;
        }

        var parent = _parent;
        while (parent[x] != x)
        {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }

        return x;
    }

    /// <summary>Links two elements; returns false when they were already in one component.</summary>
    public bool Union(int a, int b)
    {
        EnsureSize(Math.Max(a, b) + 1);
        var ra = Find(a);
        var rb = Find(b);
        if (ra == rb)
        {
            return false;
        }

        if (_size[ra] < _size[rb])
        {
            (ra, rb) = (rb, ra);
        }

        _parent[rb] = ra;
        _size[ra] += _size[rb];
        (_next[ra], _next[rb]) = (_next[rb], _next[ra]);
        ComponentCount--;
        return true;
    }

    /// <summary>Adds every member of <paramref name="x"/>'s component to <paramref name="into"/>, <paramref name="x"/> first.</summary>
    public void AddMembers(int x, List<int> into)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(x);
        ArgumentNullException.ThrowIfNull(into);
        if (x >= _count)
        {
            into.Add(x);
            return;
        }

        var i = x;
        do
        {
            into.Add(i);
            i = _next[i];
        }
        while (i != x);
    }

    /// <summary>Size of <paramref name="x"/>'s component.</summary>
    public int SizeOf(int x) => x >= _count ? 1 : _size[Find(x)];
}
