using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using MemoryCluster.Compute.Engine.Internal;

namespace MemoryCluster.Compute.Engine.Vectors;

/// <summary>
/// Hierarchical navigable small world index (Malkov and Yashunin, 2016) over float vectors.
/// </summary>
/// <remarks>
/// <para>Layout: every vector lives in one contiguous float array (node × dimensions); layer-0 links
/// in one int array with a fixed stride of 1 + 2M (count, then ids); upper-layer links in a small
/// array per node that has them. Distances go through <see cref="VectorKernels"/> (SIMD; squared L2 compared).</para>
/// <para>Concurrency: one writer at a time (writes are serialised by a lock) and any number of
/// readers without locks. Readers capture the current storage once per search; storage is only
/// ever replaced by a larger copy, and a node is fully written before any link points at it, so a
/// reader sees either the old or the new state of a neighbour list, never freed memory.</para>
/// <para>Delete marks a tombstone: the node keeps routing searches but is never returned. When
/// <see cref="DeletedFraction"/> grows large (the service uses 0.25), call <see cref="Rebuild"/>
/// and swap the result in.</para>
/// </remarks>
public sealed partial class HnswIndex
{
    private const int MaxLevel = 31;
    private const long NoEntry = -1;

    [ThreadStatic]
    private static SearchContext? _threadContext;

    private const int LockStripes = 1024;

    private readonly Lock _writeLock = new();
    private readonly Lock _entryLock = new();
    private readonly Lock[] _linkLocks = CreateLocks();
    private readonly int _dim;
    private readonly int _m;
    private readonly int _m0;
    private readonly int _stride0;
    private readonly int _prefetchLines;
    private readonly double _levelMultiplier;
    private readonly bool _normalize;
    private readonly bool _l2;
    private Storage _storage;
    private int[] _labelToNode = [];
    private long _entry = NoEntry;
    private int _count;
    private int _deleted;
    private SplitMix64 _random;

    /// <summary>Creates an empty index.</summary>
    public HnswIndex(HnswOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _dim = options.Dimensions;
        _m = options.M;
        _m0 = 2 * options.M;
        _stride0 = _m0 + 1;

        // Up to eight lines (512 bytes) of each vector about to be compared: measured best on 784 dimensions among 1-12
        // lines (more evicts what the search still uses), the whole row for small vectors.
        _prefetchLines = Math.Min(8, ((_dim * sizeof(float)) + 63) / 64);
        _levelMultiplier = 1.0 / Math.Log(options.M);
        _normalize = options.Metric == DistanceMetric.Cosine;
        _l2 = options.Metric == DistanceMetric.L2;
        _random = new SplitMix64(options.Seed);
        _storage = new Storage(options.InitialCapacity, _dim, _stride0);
    }

    /// <summary>The options the index was built with.</summary>
    public HnswOptions Options { get; }

    /// <summary>Nodes inserted, including tombstoned ones.</summary>
    public int NodeCount => Volatile.Read(ref _count);

    /// <summary>Live (not deleted) vectors.</summary>
    public int Count => Volatile.Read(ref _count) - Volatile.Read(ref _deleted);

    /// <summary>Share of nodes that are tombstones.</summary>
    public double DeletedFraction
    {
        get
        {
            var count = NodeCount;
            return count == 0 ? 0 : (double)Volatile.Read(ref _deleted) / count;
        }
    }

    /// <summary>Bytes held by the index's arrays (vectors, links, levels, ids, tombstones).</summary>
    public long MemoryBytes
    {
        get
        {
            var s = Volatile.Read(ref _storage);
            long bytes = s.VectorBytes + ((long)s.Links0.Length * sizeof(int))
                + s.Levels.Length + s.Deleted.Length + ((long)s.InDegree.Length * sizeof(ushort)) + ((long)s.Labels.Length * sizeof(int))
                + ((long)s.Upper.Length * IntPtr.Size) + ((long)Volatile.Read(ref _labelToNode).Length * sizeof(int));
            var count = NodeCount;
            for (var i = 0; i < count; i++)
            {
                if (s.Upper[i] is { } upper)
                {
                    bytes += (upper.Length * sizeof(int)) + 24;
                }
            }

            return bytes;
        }
    }

    /// <summary>True when a live vector has this id.</summary>
    public bool Contains(int id) => NodeOf(id) >= 0;

    /// <summary>
    /// Inserts a vector under <paramref name="id"/> (a non-negative dense id, such as a graph node id).
    /// An existing vector with the same id is replaced (the old node becomes a tombstone).
    /// </summary>
    public void Add(int id, ReadOnlySpan<float> vector)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(id);
        if (vector.Length != _dim)
        {
            throw new ArgumentException($"Vector has {vector.Length} dimensions; the index has {_dim}.", nameof(vector));
        }

        lock (_writeLock)
        {
            var previous = NodeOf(id);
            if (previous >= 0)
            {
                MarkDeleted(previous, id);
            }

            Insert(id, vector);
        }
    }

    /// <summary>
    /// Inserts many vectors on several threads (the parallel build); <paramref name="vectors"/> holds them
    /// row after row. Levels still come from the seed, but which links a node gets depends on thread
    /// timing, so unlike <see cref="Add"/> the result is not reproducible. Searches may run meanwhile.
    /// </summary>
    public void AddRange(IReadOnlyList<int> ids, ReadOnlyMemory<float> vectors, int maxDegreeOfParallelism = -1)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var n = ids.Count;
        if ((long)n * _dim != vectors.Length)
        {
            throw new ArgumentException($"{vectors.Length} floats do not make {n} vectors of {_dim} dimensions.", nameof(vectors));
        }

        var distinct = new HashSet<int>();
        foreach (var id in ids)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(id, nameof(ids));
            if (!distinct.Add(id))
            {
                throw new ArgumentException($"Id {id} appears twice in one batch.", nameof(ids));
            }
        }

        lock (_writeLock)
        {
            foreach (var id in ids)
            {
                var previous = NodeOf(id);
                if (previous >= 0)
                {
                    MarkDeleted(previous, id);
                }
            }

            EnsureCapacity(_count + n);
            var first = _count;
            for (var i = 0; i < n; i++)
            {
                PrepareNode(first + i, ids[i], vectors.Span.Slice(i * _dim, _dim));
            }

            var start = 0;
            if (n > 0 && _entry == NoEntry)
            {
                LinkNode(first);
                start = 1;
            }

            Parallel.For(start, n, new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism }, i => LinkNode(first + i));
            for (var i = 0; i < n; i++)
            {
                PublishLabel(ids[i], first + i);
            }

            Volatile.Write(ref _count, first + n);
        }
    }

    /// <summary>Marks the vector with this id deleted. Returns false when there is none.</summary>
    public bool Delete(int id)
    {
        lock (_writeLock)
        {
            var node = NodeOf(id);
            if (node < 0)
            {
                return false;
            }

            MarkDeleted(node, id);
            return true;
        }
    }

    /// <summary>Builds a fresh index from the live vectors only (the repair policy for many tombstones).</summary>
    public HnswIndex Rebuild()
    {
        lock (_writeLock)
        {
            var live = _count - _deleted;
            var rebuilt = new HnswIndex(Options with { InitialCapacity = Math.Max(1, live) });
            var s = _storage;
            for (var node = 0; node < _count; node++)
            {
                if (s.Deleted[node] == 0)
                {
                    rebuilt.Insert(s.Labels[node], VectorOf(s, node));
                }
            }

            return rebuilt;
        }
    }

    /// <summary>Computes the distance between <paramref name="query"/> and the stored vector <paramref name="id"/>.</summary>
    public bool TryGetDistance(ReadOnlySpan<float> query, int id, out float distance)
    {
        // IMPORTANT: the kernels read the index's dimension count from both rows without bounds checks.
        if (query.Length != _dim)
        {
            throw new ArgumentException($"Query has {query.Length} dimensions; the index has {_dim}.", nameof(query));
        }

        var node = NodeOf(id);
        if (node < 0)
        {
            distance = float.NaN;
            return false;
        }

        var q = PrepareQuery(query, GetContext());
        distance = Reported(Distance(q, VectorOf(Volatile.Read(ref _storage), node)));
        return true;
    }

    /// <summary>Copies the stored (for cosine: normalised) vector into <paramref name="destination"/>.</summary>
    public bool TryGetVector(int id, Span<float> destination)
    {
        var node = NodeOf(id);
        if (node < 0)
        {
            return false;
        }

        VectorOf(Volatile.Read(ref _storage), node).CopyTo(destination);
        return true;
    }

    /// <summary>Searches with the default ef; returns up to <paramref name="k"/> hits, nearest first.</summary>
    public VectorHit[] Search(ReadOnlySpan<float> query, int k, int ef = 0)
    {
        var buffer = new VectorHit[k];
        var found = Search(query, k, buffer, ef, default(AcceptAllFilter));
        return found == k ? buffer : buffer.AsSpan(0, found).ToArray();
    }

    /// <summary>Searches without allocating: writes up to k hits, nearest first, and returns how many.</summary>
    public int Search(ReadOnlySpan<float> query, int k, Span<VectorHit> destination, int ef = 0)
        => Search(query, k, destination, ef, default(AcceptAllFilter));

    /// <summary>Searches returning only ids the filter accepts (the graph is still traversed through the others).</summary>
    public int Search<TFilter>(ReadOnlySpan<float> query, int k, Span<VectorHit> destination, int ef, TFilter filter)
        where TFilter : IVectorFilter
    {
        if (query.Length != _dim)
        {
            throw new ArgumentException($"Query has {query.Length} dimensions; the index has {_dim}.", nameof(query));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        if (destination.Length < k)
        {
            throw new ArgumentException("Destination is shorter than k.", nameof(destination));
        }

        var entry = Volatile.Read(ref _entry);
        if (entry == NoEntry)
        {
            return 0;
        }

        var s = Volatile.Read(ref _storage);
        var context = GetContext();
        var q = PrepareQuery(query, context);
        var current = (int)entry;
        var topLevel = (int)(entry >> 32);
        var currentDistance = Distance(q, VectorOf(s, current));
        for (var level = topLevel; level > 0; level--)
        {
            GreedyStep(s, q, level, ref current, ref currentDistance);
        }

        var results = SearchLayer(s, q, current, currentDistance, Math.Max(ef > 0 ? ef : Options.EfSearch, k), 0, context, new LiveFilter<TFilter>(s, filter));
        while (results.Count > k)
        {
            results.Pop();
        }

        var found = results.Count;
        for (var i = found - 1; i >= 0; i--)
        {
            destination[i] = new VectorHit(s.Labels[results.TopId], Reported(results.TopDistance));
            results.Pop();
        }

        return found;
    }

    /// <summary>Nodes that a level-0 walk from the entry point cannot reach (diagnostics and tests).</summary>
    internal int CountUnreachable()
    {
        lock (_writeLock)
        {
            if (_entry == NoEntry)
            {
                return 0;
            }

            var s = _storage;
            var seen = new bool[_count];
            var stack = new Stack<int>();
            stack.Push((int)_entry);
            seen[(int)_entry] = true;
            var reached = 1;
            while (stack.Count > 0)
            {
                var links = LinksOf(s, stack.Pop(), 0);
                for (var i = 1; i <= links[0]; i++)
                {
                    if (!seen[links[i]])
                    {
                        seen[links[i]] = true;
                        reached++;
                        stack.Push(links[i]);
                    }
                }
            }

            return _count - reached;
        }
    }

    private static Lock[] CreateLocks()
    {
        var locks = new Lock[LockStripes];
        for (var i = 0; i < locks.Length; i++)
        {
            locks[i] = new Lock();
        }

        return locks;
    }

    private static SearchContext GetContext() => _threadContext ??= new SearchContext();

    private int NodeOf(int id)
    {
        var map = Volatile.Read(ref _labelToNode);
        return (uint)id < (uint)map.Length ? Volatile.Read(ref map[id]) - 1 : -1;
    }

    private void MarkDeleted(int node, int id)
    {
        Volatile.Write(ref _storage.Deleted[node], 1);
        Volatile.Write(ref _labelToNode[id], 0);
        Volatile.Write(ref _deleted, _deleted + 1);
    }

    private ReadOnlySpan<float> PrepareQuery(ReadOnlySpan<float> query, SearchContext context)
    {
        if (!_normalize)
        {
            return query;
        }

        var buffer = context.QueryBuffer(_dim);
        var norm = TensorPrimitives.Norm(query);
        if (norm > 0)
        {
            TensorPrimitives.Divide(query, norm, buffer);
        }
        else
        {
            query.CopyTo(buffer);
        }

        return buffer;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReadOnlySpan<float> VectorOf(Storage s, int node)
        => MemoryMarshal.CreateReadOnlySpan(ref s.Row(node), _dim);

    /// <summary>
    /// The distance the index compares: squared L2 (the same order as L2, without a root per comparison) or one minus
    /// the dot product. <see cref="Reported"/> turns it into what callers see.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private float Distance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        => _l2
            ? VectorKernels.L2Squared(ref MemoryMarshal.GetReference(a), ref MemoryMarshal.GetReference(b), _dim)
            : 1f - VectorKernels.Dot(ref MemoryMarshal.GetReference(a), ref MemoryMarshal.GetReference(b), _dim);

    /// <summary>The distance a caller sees: L2 (the root of the compared square), or one minus the dot product as compared.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private float Reported(float distance) => _l2 ? MathF.Sqrt(distance) : distance;

    /// <summary>
    /// Asks the cache for the first lines of a node's vector before its distance is computed (the hardware prefetcher
    /// follows on from there); a prefetch never faults, and the vectors are pinned, so the address stays right.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe void Prefetch(Storage s, int node)
    {
        if (Sse.IsSupported)
        {
            var start = (byte*)Unsafe.AsPointer(ref s.Row(node));
            for (var line = 0; line < _prefetchLines; line++)
            {
                Sse.Prefetch0(start + (line * 64));
            }
        }
    }

    /// <summary>The neighbour list of a node on a level: element 0 is the count, then the ids.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<int> LinksOf(Storage s, int node, int level)
        => level == 0
            ? s.Links0.AsSpan(node * _stride0, _stride0)
            : s.Upper[node].AsSpan((level - 1) * (_m + 1), _m + 1);

    private void GreedyStep(Storage s, ReadOnlySpan<float> q, int level, ref int current, ref float currentDistance)
    {
        var changed = true;
        while (changed)
        {
            changed = false;
            var links = LinksOf(s, current, level);
            var n = Math.Min(Volatile.Read(ref links[0]), links.Length - 1);
            for (var i = 1; i <= n; i++)
            {
                var candidate = links[i];
                var d = Distance(q, VectorOf(s, candidate));
                if (d < currentDistance)
                {
                    currentDistance = d;
                    current = candidate;
                    changed = true;
                }
            }
        }
    }

    /// <summary>
    /// Best-first search of one layer. Returns the context's result heap (largest distance on top),
    /// holding at most <paramref name="ef"/> nodes the filter accepts.
    /// </summary>
    private DistanceHeap SearchLayer<TFilter>(Storage s, ReadOnlySpan<float> q, int entry, float entryDistance, int ef, int level, SearchContext context, TFilter filter)
        where TFilter : IVectorFilter
    {
        var visited = context.Visited;
        var candidates = context.Candidates;
        var results = context.Results;
        visited.Reset(s.Capacity);
        candidates.Clear();
        results.Clear();
        visited.TryVisit(entry);
        candidates.Push(entryDistance, entry);
        if (filter.Accept(entry))
        {
            results.Push(entryDistance, entry);
        }

        var bound = results.Count > 0 ? results.TopDistance : float.PositiveInfinity;

        // Room for a whole list: no level's list is longer than layer 0's 2M.
        var fresh = context.Fresh(_m0);
        while (candidates.Count > 0)
        {
            var distance = candidates.TopDistance;
            if (distance > bound && results.Count >= ef)
            {
                break;
            }

            var node = candidates.TopId;
            candidates.Pop();
            var links = LinksOf(s, node, level);
            var n = Math.Min(Volatile.Read(ref links[0]), links.Length - 1);

            // The neighbours not seen yet, their vectors asked of memory all at once before the first distance.
            var count = 0;
            for (var i = 1; i <= n; i++)
            {
                var candidate = links[i];
                if (visited.TryVisit(candidate))
                {
                    fresh[count++] = candidate;
                    Prefetch(s, candidate);
                }
            }

            for (var i = 0; i < count; i++)
            {
                var candidate = fresh[i];
                var d = Distance(q, VectorOf(s, candidate));
                if (results.Count < ef || d < bound)
                {
                    candidates.Push(d, candidate);
                    if (filter.Accept(candidate))
                    {
                        results.Push(d, candidate);
                        if (results.Count > ef)
                        {
                            results.Pop();
                        }

                        bound = results.TopDistance;
                    }
                }
            }
        }

        return results;
    }

    private void EnsureCapacity(int needed)
    {
        var s = _storage;
        if (needed <= s.Capacity)
        {
            return;
        }

        var grown = new Storage(Math.Max(needed, s.Capacity * 2), _dim, _stride0);
        var count = _count;
        s.Vectors[..(count * _dim)].CopyTo(grown.Vectors);
        s.Links0.AsSpan(0, count * _stride0).CopyTo(grown.Links0);
        for (var i = 0; i < count; i++)
        {
            // IMPORTANT: copy, do not share: readers still walking the old storage must never see
            // links to nodes beyond its capacity (vectors are read without bounds checks).
            grown.Upper[i] = (int[]?)s.Upper[i]?.Clone();
        }

        s.Levels.AsSpan(0, count).CopyTo(grown.Levels);
        s.Labels.AsSpan(0, count).CopyTo(grown.Labels);
        s.Deleted.AsSpan(0, count).CopyTo(grown.Deleted);
        s.InDegree.AsSpan(0, count).CopyTo(grown.InDegree);
        Volatile.Write(ref _storage, grown);
    }

    /// <summary>All per-node arrays; replaced as a whole (never shrunk in place) when the index grows.</summary>
    private sealed class Storage
    {
        public readonly int Capacity;
        public readonly int[] Links0;
        public readonly int[]?[] Upper;
        public readonly byte[] Levels;
        public readonly int[] Labels;
        public readonly byte[] Deleted;

        /// <summary>Level-0 in-links per node (saturating), so pruning never strands a node.</summary>
        public readonly ushort[] InDegree;

        /// <summary>
        /// The vectors, row after row from <see cref="_vectorStart"/>: pinned (never moved), so the first row starts on a
        /// 64-byte line, and every row does when its length is a multiple of 16 floats (784, 64): a 512-bit load then never
        /// spans two lines.
        /// </summary>
        private readonly float[] _vectorArray;
        private readonly int _vectorStart;
        private readonly int _dimensions;

        public unsafe Storage(int capacity, int dimensions, int stride0)
        {
            Capacity = capacity;
            _dimensions = dimensions;
            // Uninitialised: a large array comes from fresh pages of the system (zero), so its pages are first touched by
            // the rows written into it, after the advice to back them with 2 MB pages. Rows are always written before read.
            _vectorArray = GC.AllocateUninitializedArray<float>(checked((capacity * dimensions) + 16), pinned: true);
            var address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_vectorArray));
            _vectorStart = (int)(((64 - (address & 63)) & 63) / sizeof(float));
            HugePages.Advise(address, (long)_vectorArray.Length * sizeof(float));
            Links0 = new int[(long)capacity * stride0];
            Upper = new int[]?[capacity];
            Levels = new byte[capacity];
            Labels = new int[capacity];
            Deleted = new byte[capacity];
            InDegree = new ushort[(capacity + 1) & ~1];
        }

        /// <summary>Every row, the unused ones included.</summary>
        public Span<float> Vectors => _vectorArray.AsSpan(_vectorStart, Capacity * _dimensions);

        /// <summary>Bytes of the vectors' array, its alignment slack included.</summary>
        public long VectorBytes => (long)_vectorArray.Length * sizeof(float);

        /// <summary>The first float of a node's row.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ref float Row(int node)
            => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_vectorArray), _vectorStart + ((nint)node * _dimensions));
    }

    /// <summary>Skips tombstones and maps nodes to ids before asking the caller's filter.</summary>
    private readonly struct LiveFilter<TFilter>(Storage storage, TFilter inner) : IVectorFilter
        where TFilter : IVectorFilter
    {
        public bool Accept(int id) => storage.Deleted[id] == 0 && inner.Accept(storage.Labels[id]);
    }

    /// <summary>Per-thread scratch space, so searches do not allocate.</summary>
    private sealed class SearchContext
    {
        private float[] _query = [];

        public VisitedSet Visited { get; } = new();

        public DistanceHeap Candidates { get; } = new(max: false);

        public DistanceHeap Results { get; } = new(max: true);

        public DistanceHeap Scratch { get; } = new(max: false);

        public int[] Sorted { get; private set; } = new int[64];

        public float[] SortedDistances { get; private set; } = new float[64];

        public int[] Selected { get; private set; } = new int[64];

        private int[] _chosen = new int[64];
        private int[] _merged = new int[128];
        private int[] _fresh = new int[64];

        /// <summary>A buffer for the neighbours of one node not visited yet.</summary>
        public Span<int> Fresh(int count)
        {
            if (_fresh.Length < count)
            {
                _fresh = new int[count * 2];
            }

            return _fresh.AsSpan(0, count);
        }

        /// <summary>A buffer for a new node's chosen neighbours (kept apart from <see cref="Selected"/>, which pruning reuses).</summary>
        public Span<int> Chosen(int count)
        {
            if (_chosen.Length < count)
            {
                _chosen = new int[count * 2];
            }

            return _chosen.AsSpan(0, count);
        }

        public Span<int> Merged(int count)
        {
            if (_merged.Length < count)
            {
                _merged = new int[count * 2];
            }

            return _merged.AsSpan(0, count);
        }

        public Span<float> QueryBuffer(int dimensions)
        {
            if (_query.Length < dimensions)
            {
                _query = new float[dimensions];
            }

            return _query.AsSpan(0, dimensions);
        }

        /// <summary>Empties a heap into <see cref="Sorted"/> nearest first; returns the count.</summary>
        public int DrainAscending(DistanceHeap heap)
        {
            var count = heap.Count;
            if (Sorted.Length < count)
            {
                Sorted = new int[count * 2];
                SortedDistances = new float[count * 2];
                Selected = new int[count * 2];
            }

            if (heap == Results)
            {
                for (var i = count - 1; i >= 0; i--)
                {
                    Sorted[i] = heap.TopId;
                    SortedDistances[i] = heap.TopDistance;
                    heap.Pop();
                }
            }
            else
            {
                for (var i = 0; i < count; i++)
                {
                    Sorted[i] = heap.TopId;
                    SortedDistances[i] = heap.TopDistance;
                    heap.Pop();
                }
            }

            return count;
        }
    }
}
