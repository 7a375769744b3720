using MemoryCluster.Compute.Engine.Graph;
using MemoryCluster.Compute.Engine.Vectors;
using MemoryCluster.Compute.Feed;

namespace MemoryCluster.Compute.Memory;

/// <summary>One complete state of the model and how a change alters it (single writer; see <see cref="MemoryModel"/>).</summary>
internal sealed class MemoryState(HnswOptions vectorDefaults)
{
    public KnowledgeGraph Graph { get; } = new();

    public Dictionary<long, HeldTriple> Triples { get; } = [];

    // The triple of each edge, by edge id (edges are dense and never reused).
    public List<long> EdgeTriples { get; } = [];

    public Dictionary<int, HashSet<long>> Literals { get; } = [];

    public Dictionary<string, VectorSpace> Spaces { get; } = new(StringComparer.Ordinal);

    public FeedPosition Position { get; set; } = FeedPosition.Start;

    public long SkippedEmbeddings { get; set; }

    // One copy of each predicate name used by literals (entity predicates are the graph's).
    private readonly Dictionary<string, string> _literalPredicates = new(StringComparer.Ordinal);

    // While a load runs, vectors are gathered per model and indexed at its end by the parallel build.
    private Dictionary<string, (List<int> Ids, List<float> Values)>? _pending;

    /// <summary>Gather vectors instead of indexing them one by one (a bulk load).</summary>
    public void BeginBulk() => _pending = new(StringComparer.Ordinal);

    /// <summary>Indexes the gathered vectors, on every core; the state then takes changes one by one again.</summary>
    public void EndBulk()
    {
        foreach (var (model, (ids, values)) in _pending ?? [])
        {
            Spaces[model].Index.AddRange(ids, values.ToArray());
        }

        _pending = null;
    }

    /// <summary>
    /// Takes a model's index as a snapshot saved it (its ids are this graph's node ids). Built with other HNSW settings
    /// than this process's, it is built again from its own vectors, so the settings in force always apply.
    /// </summary>
    public void AddSpace(string model, int dimensions, HnswIndex index)
    {
        var wanted = vectorDefaults with { Dimensions = dimensions };
        var saved = index.Options;
        if (saved.M != wanted.M || saved.EfConstruction != wanted.EfConstruction || saved.EfSearch != wanted.EfSearch || saved.Metric != wanted.Metric)
        {
            var ids = new List<int>();
            var values = new List<float>();
            var vector = new float[dimensions];
            for (var node = 0; node < Graph.NodeCount; node++)
            {
                if (index.TryGetVector(node, vector))
                {
                    ids.Add(node);
                    values.AddRange(vector);
                }
            }

            index = new HnswIndex(wanted);
            index.AddRange(ids, values.ToArray());
        }

        Spaces[model] = new VectorSpace(model, dimensions, index);
    }

    public void Apply(FeedChange change)
    {
        switch (change)
        {
            case FeedChange.TripleWritten w:
                WriteTriple(w.Row);
                break;
            case FeedChange.TripleDeleted d:
                DeleteTriple(d.Id);
                break;
            case FeedChange.TriplesTruncated:
                foreach (var id in Triples.Keys.ToList())
                {
                    DeleteTriple(id);
                }

                break;
            case FeedChange.EmbeddingWritten e:
                WriteEmbedding(e.Row);
                break;
            case FeedChange.EmbeddingDeleted e:
                if (Spaces.TryGetValue(e.Model, out var space) && Graph.TryGetNode(e.Entity, out var node))
                {
                    space.Index.Delete(node);
                }

                break;
            case FeedChange.EmbeddingsTruncated:
                Spaces.Clear();
                break;
            default:
                throw new InvalidOperationException($"unknown change {change.GetType().Name}");
        }
    }

    public void WriteTriple(TripleRow row)
    {
        if (Triples.TryGetValue(row.Id, out var held))
        {
            // A supersession only closes the validity: the edge keeps its id. Anything else replaces the edge.
            var old = held.Row;
            var closing = old with { ValidTo = row.ValidTo, SupersededBy = row.SupersededBy } == row && row.ValidTo is { } to && (old.ValidTo ?? long.MaxValue) > to;
            if (closing && (held.Edge < 0 || row.ValidTo > row.ValidFrom))
            {
                if (held.Edge >= 0)
                {
                    Graph.Supersede(held.Edge, row.ValidTo!.Value);
                }

                Triples[row.Id] = held with { Row = row };
                return;
            }

            DeleteTriple(row.Id);
        }

        var subject = Graph.InternNode(row.Subject);
        var edge = -1;
        if (row.Kind == ObjectKind.Entity)
        {
            var predicate = Graph.InternPredicate(row.Predicate);
            var obj = Graph.InternNode(row.Object);
            row = Shared(row, Graph.NodeName(subject), Graph.PredicateName(predicate), Graph.NodeName(obj));
            var to = row.ValidTo ?? long.MaxValue;
            if (to > row.ValidFrom)
            {
                edge = Graph.AddEdge(subject, predicate, obj, row.Confidence, row.ValidFrom, to);
            }
            else
            {
                // Valid for no time at all (closed where it opened): held, never seen.
                edge = Graph.AddEdge(subject, predicate, obj, row.Confidence, row.ValidFrom, row.ValidFrom + 1);
                Graph.Delete(edge);
            }

            EdgeTriples.Add(row.Id);
        }
        else
        {
            row = Shared(row, Graph.NodeName(subject), SharedPredicate(row.Predicate), row.Object);
            if (!Literals.TryGetValue(subject, out var set))
            {
                Literals[subject] = set = [];
            }

            set.Add(row.Id);
        }

        Triples[row.Id] = new HeldTriple(row, edge);
    }

    // The row as held refers to the graph's own copy of each name (and one copy of each literal's predicate), so the
    // copies a read made die young: a load of a million rows keeps a million rows, not three million more strings.
    private static TripleRow Shared(TripleRow row, string subject, string predicate, string obj) =>
        ReferenceEquals(row.Subject, subject) && ReferenceEquals(row.Predicate, predicate) && ReferenceEquals(row.Object, obj)
            ? row
            : row with { Subject = subject, Predicate = predicate, Object = obj };

    private string SharedPredicate(string predicate)
    {
        if (!_literalPredicates.TryGetValue(predicate, out var shared))
        {
            _literalPredicates[predicate] = shared = predicate;
        }

        return shared;
    }

    public void WriteEmbedding(EmbeddingRow row)
    {
        var finite = true;
        foreach (var v in row.Vector)
        {
            finite &= float.IsFinite(v);
        }

        if (!Spaces.TryGetValue(row.Model, out var space))
        {
            if (!finite || row.Vector.Length == 0)
            {
                SkippedEmbeddings++;
                return;
            }

            Spaces[row.Model] = space = new VectorSpace(row.Model, row.Vector.Length, new HnswIndex(vectorDefaults with { Dimensions = row.Vector.Length }));
        }

        var node = Graph.InternNode(row.Entity);
        if (!finite || row.Vector.Length != space.Dimensions)
        {
            // The entity's earlier vector (if any) is no longer its vector either.
            space.Index.Delete(node);
            SkippedEmbeddings++;
            return;
        }

        if (_pending is not null)
        {
            if (!_pending.TryGetValue(row.Model, out var pending))
            {
                _pending[row.Model] = pending = ([], []);
            }

            pending.Ids.Add(node);
            pending.Values.AddRange(row.Vector);
            return;
        }

        space.Index.Add(node, row.Vector);
    }

    private void DeleteTriple(long id)
    {
        if (!Triples.Remove(id, out var held))
        {
            return;
        }

        if (held.Edge >= 0)
        {
            Graph.Delete(held.Edge);
        }
        else if (Graph.TryGetNode(held.Row.Subject, out var subject) && Literals.TryGetValue(subject, out var set))
        {
            set.Remove(id);
        }
    }
}
