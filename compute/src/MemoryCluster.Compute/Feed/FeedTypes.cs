namespace MemoryCluster.Compute.Feed;

/// <summary>
/// How far a compute process has applied the feed: the commit number, and that commit's random id. A number alone
/// is not enough: after a failover that lost commits, the new primary numbers new commits with the same numbers.
/// </summary>
public readonly record struct FeedPosition(long Seq, Guid CommitId)
{
    /// <summary>Before the first commit.</summary>
    public static FeedPosition Start => new(0, Guid.Empty);

    public override string ToString() => Seq == 0 ? "0" : $"{Seq} ({CommitId.ToString()[..8]})";
}

/// <summary>Whether a triple's object is another entity (an edge in the graph) or a literal value (an attribute).</summary>
public enum ObjectKind
{
    Unknown = 0,
    Entity,
    Literal,
}

/// <summary>A row of <c>triples</c>. Times are Unix milliseconds.</summary>
public sealed record TripleRow(
    long Id,
    string Subject,
    string Predicate,
    string Object,
    ObjectKind Kind,
    float Confidence,
    long? SourceId,
    long ValidFrom,
    long? ValidTo,
    long? SupersededBy);

/// <summary>A row of <c>embeddings</c>.</summary>
public sealed record EmbeddingRow(string Entity, string Model, float[] Vector);

/// <summary>One change a commit made, as the feed carries it.</summary>
public abstract record FeedChange
{
    private FeedChange()
    {
    }

    public sealed record TripleWritten(TripleRow Row) : FeedChange;

    public sealed record TripleDeleted(long Id) : FeedChange;

    public sealed record TriplesTruncated : FeedChange;

    public sealed record EmbeddingWritten(EmbeddingRow Row) : FeedChange;

    public sealed record EmbeddingDeleted(string Entity, string Model) : FeedChange;

    public sealed record EmbeddingsTruncated : FeedChange;
}

/// <summary>One committed transaction: its number, id, commit time (Unix ms) and changes in the order it made them.</summary>
public sealed record FeedCommit(long Seq, Guid CommitId, long CommittedAtMs, IReadOnlyList<FeedChange> Changes)
{
    public FeedPosition Position => new(Seq, CommitId);
}
