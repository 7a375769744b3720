namespace MemoryCluster.Compute.Engine.Vectors;

/// <summary>One search result: the vector's id and its distance to the query.</summary>
public readonly record struct VectorHit(int Id, float Distance);

/// <summary>Restricts a search to ids the caller accepts. Use a struct so the check is inlined.</summary>
public interface IVectorFilter
{
    /// <summary>True when <paramref name="id"/> may appear in the results.</summary>
    bool Accept(int id);
}

/// <summary>Accepts every id.</summary>
public readonly struct AcceptAllFilter : IVectorFilter
{
    /// <inheritdoc />
    public bool Accept(int id) => true;
}

/// <summary>Adapts a delegate to <see cref="IVectorFilter"/>.</summary>
public readonly struct PredicateFilter(Func<int, bool> predicate) : IVectorFilter
{
    /// <inheritdoc />
    public bool Accept(int id) => predicate(id);
}
