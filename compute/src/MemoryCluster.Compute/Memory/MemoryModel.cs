using MemoryCluster.Compute.Engine.Graph;
using MemoryCluster.Compute.Engine.Vectors;
using MemoryCluster.Compute.Feed;

namespace MemoryCluster.Compute.Memory;

/// <summary>
/// A triple as this process holds it: its row, and its edge in the graph (-1 for a literal). A value, held inline in
/// the triples' table: a million triples are a million fewer objects for the collector.
/// </summary>
public readonly record struct HeldTriple(TripleRow Row, int Edge);

/// <summary>One embedding model's vectors: an HNSW index over graph node ids, all of one dimension.</summary>
public sealed record VectorSpace(string Model, int Dimensions, HnswIndex Index);

/// <summary>
/// Everything a compute process holds: the graph (entity objects are edges, literal objects attributes), the
/// vectors per embedding model, and the feed position they reflect. One writer applies the feed (under the write
/// lock, a whole batch of commits at a time, so a reader never sees half a commit); queries run under the read lock.
/// A load builds a new state beside the one being served and replaces it in one step, so reads go on meanwhile.
/// </summary>
public sealed class MemoryModel
{
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly HnswOptions _vectorDefaults;
    private MemoryState _state;
    private MemoryState? _loading;
    private TaskCompletionSource _applied = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // The ids of the last commits applied, by number (written under the write lock, read under the read lock).
    private readonly Dictionary<long, Guid> _recent = [];

    public MemoryModel(HnswOptions? vectorDefaults = null, IEnumerable<string>? identityPredicates = null)
    {
        _vectorDefaults = vectorDefaults ?? new HnswOptions { Dimensions = 1 };
        IdentityPredicates = [.. identityPredicates ?? ["sameAs"]];
        _state = NewState();
    }

    /// <summary>Predicates whose edges join two names of one identity (seed 000's hot case).</summary>
    public IReadOnlyList<string> IdentityPredicates { get; }

    /// <summary>The last commit applied.</summary>
    public FeedPosition Position => Volatile.Read(ref _state).Position;

    /// <summary>Embedding rows not indexed: a dimension other than their model's, or a value that is not finite.</summary>
    public long SkippedEmbeddings => Volatile.Read(ref _state).SkippedEmbeddings;

    /// <summary>
    /// Waits until this process shows <paramref name="commit"/>; false when <paramref name="timeout"/> passed first.
    /// </summary>
    public async Task<bool> WaitForAsync(FeedPosition commit, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        while (true)
        {
            var next = Volatile.Read(ref _applied).Task;
            if (Shows(commit))
            {
                return true;
            }

            try
            {
                await next.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return Shows(commit);
            }
        }
    }

    /// <summary>
    /// Whether the state served holds <paramref name="commit"/>: its number is applied, and the commit applied under
    /// that number is that one. A number alone is not enough: after a failover that lost commits, the new primary
    /// gives new commits numbers this process may have applied from the old history (it then loads again). Numbers
    /// older than the last <see cref="RecentCommits"/> applied, or than the last load, count as shown.
    /// </summary>
    public bool Shows(FeedPosition commit)
    {
        _lock.EnterReadLock();
        try
        {
            return _state.Position.Seq >= commit.Seq && (!_recent.TryGetValue(commit.Seq, out var id) || id == commit.CommitId);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>How many of the last applied commits' ids are kept for <see cref="Shows"/>.</summary>
    public const int RecentCommits = 4096;

    /// <summary>Runs a query under the read lock.</summary>
    public T Read<T>(Func<MemoryView, T> query)
    {
        _lock.EnterReadLock();
        try
        {
            return query(new MemoryView(_state));
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Starts a load into a new state; the current one keeps serving until <see cref="FinishLoad(FeedPosition)"/>.</summary>
    public void BeginLoad()
    {
        _loading = NewState();
        _loading.BeginBulk();
    }

    /// <summary>Adds a row of the load under way.</summary>
    public void LoadTriple(TripleRow row) => Loading.WriteTriple(row);

    /// <inheritdoc cref="LoadTriple"/>
    public void LoadEmbedding(EmbeddingRow row) => Loading.WriteEmbedding(row);

    /// <summary>Ends the load at the snapshot's position and serves it from now on.</summary>
    public void FinishLoad(FeedPosition position)
    {
        var loaded = Loading;
        loaded.EndBulk();
        loaded.Graph.Compact();
        loaded.Position = position;
        _ = loaded.Graph.IdentityComponentCount;
        _loading = null;
        Write(() =>
        {
            _state = loaded;
            _recent.Clear();
            _recent[position.Seq] = position.CommitId;
        });
    }

    /// <summary>Drops a load under way (its source failed); the current state goes on serving.</summary>
    public void AbandonLoad() => _loading = null;

    /// <summary>The current state and its position, copied under the read lock (see <see cref="MemorySnapshot"/>).</summary>
    public SnapshotContents Capture() => Read(view =>
    {
        var state = view.State;
        var nodes = new string[state.Graph.NodeCount];
        for (var i = 0; i < nodes.Length; i++)
        {
            nodes[i] = state.Graph.NodeName(i);
        }

        var triples = new List<TripleRow>(state.Triples.Count);
        foreach (var held in state.Triples.Values)
        {
            triples.Add(held.Row);
        }

        var spaces = new List<SnapshotSpace>();
        foreach (var space in state.Spaces.Values)
        {
            using var saved = new MemoryStream();
            space.Index.Save(saved);
            spaces.Add(new SnapshotSpace(space.Model, space.Dimensions, saved.ToArray()));
        }

        return new SnapshotContents(state.Position, state.SkippedEmbeddings, nodes, triples, spaces);
    });

    /// <summary>Adds an entity of the load under way (a snapshot's, in its id order).</summary>
    public void LoadNode(string name) => Loading.Graph.InternNode(name);

    /// <summary>Adds an embedding model's saved index to the load under way (built again if this process's HNSW settings differ).</summary>
    public void LoadSpace(string model, int dimensions, HnswIndex index) => Loading.AddSpace(model, dimensions, index);

    /// <summary>Ends the load of a snapshot at its position (see <see cref="FinishLoad(FeedPosition)"/>).</summary>
    public void FinishLoad(SnapshotHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        Loading.SkippedEmbeddings = header.SkippedEmbeddings;
        FinishLoad(header.Position);
    }

    /// <summary>Applies commits, which must follow <see cref="Position"/> without a gap.</summary>
    public void Apply(IReadOnlyList<FeedCommit> commits)
    {
        if (commits.Count == 0)
        {
            return;
        }

        Write(() =>
        {
            foreach (var commit in commits)
            {
                if (commit.Seq != _state.Position.Seq + 1)
                {
                    throw new InvalidOperationException($"commit {commit.Seq} does not follow commit {_state.Position.Seq}, the last one applied");
                }

                foreach (var change in commit.Changes)
                {
                    _state.Apply(change);
                }

                _state.Position = commit.Position;
                _recent[commit.Seq] = commit.CommitId;
                _recent.Remove(commit.Seq - RecentCommits);
            }

            // The identity components are rebuilt now, under the write lock, when a supersession dirtied them.
            _ = _state.Graph.IdentityComponentCount;
        });
    }

    private MemoryState Loading => _loading ?? throw new InvalidOperationException("no load is under way");

    private MemoryState NewState()
    {
        var state = new MemoryState(_vectorDefaults);
        state.Graph.SetIdentityPredicates(PredicateSet.Of([.. IdentityPredicates.Select(state.Graph.InternPredicate)]));
        return state;
    }

    private void Write(Action action)
    {
        _lock.EnterWriteLock();
        try
        {
            action();
        }
        finally
        {
            _lock.ExitWriteLock();
            Interlocked.Exchange(ref _applied, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }

    /// <summary>What a query may read; valid only inside <see cref="Read{T}"/>.</summary>
    public readonly struct MemoryView
    {
        private readonly MemoryState _state;

        internal MemoryView(MemoryState state) => _state = state;

        internal MemoryState State => _state;

        public KnowledgeGraph Graph => _state.Graph;

        public FeedPosition Position => _state.Position;

        public int TripleCount => _state.Triples.Count;

        public IReadOnlyDictionary<string, VectorSpace> Spaces => _state.Spaces;

        public HeldTriple? Triple(long id) => _state.Triples.TryGetValue(id, out var held) ? held : null;

        /// <summary>The triple behind an edge.</summary>
        public long TripleOfEdge(int edge) => _state.EdgeTriples[edge];

        /// <summary>The literal triples whose subject is this node.</summary>
        public IEnumerable<TripleRow> Literals(int node) =>
            _state.Literals.TryGetValue(node, out var set) ? Rows(_state.Triples, set) : [];

        private static IEnumerable<TripleRow> Rows(Dictionary<long, HeldTriple> triples, HashSet<long> ids) => ids.Select(id => triples[id].Row);
    }
}
