using MemoryCluster.Compute.Engine.Fusion;
using MemoryCluster.Compute.Store;

namespace MemoryCluster.Compute.Api;

/// <summary>A request that failed validation: every bad field, nothing changed.</summary>
public sealed class InvalidRequestException(Errors errors) : Exception("the request is not valid; nothing was changed")
{
    public Errors Errors { get; } = errors;
}

/// <summary>What a write answers: the ids it created, its feed commit, and whether this process shows it yet.</summary>
public sealed record WriteAnswer(IReadOnlyList<long> Ids, long Seq, bool Visible);

/// <summary>
/// Every operation of the service, validated, for both front ends: the HTTP endpoints and the MCP tools. A bad
/// request throws <see cref="InvalidRequestException"/>, an unknown name <see cref="NotFoundException"/>, a refused
/// supersession <see cref="SupersedeRefusedException"/>; each front end turns them into its own kind of error.
/// </summary>
public sealed class Operations(ComputeContext c)
{
    public async Task<WriteAnswer> WriteTriplesAsync(WriteTriplesRequest? request, CancellationToken ct)
    {
        Valid(RequestValidator.Check(request, c.Limits));
        var triples = request!.Triples!.Select(t => new NewTriple(t.Subject!, t.Predicate!, t.Object!, RequestValidator.KindOf(t.ObjectKind), t.Confidence ?? 1f)).ToList();
        return await VisibleAsync(await TripleStore.WriteTriplesAsync(c.ReadWrite, triples, Source(request.Source), ct).ConfigureAwait(false), ct).ConfigureAwait(false);
    }

    public async Task<WriteAnswer> SupersedeAsync(long id, SupersedeRequest? request, CancellationToken ct)
    {
        Valid(RequestValidator.Check(request));
        var replacement = new NewTriple(request!.Subject!, request.Predicate!, request.Object!, RequestValidator.KindOf(request.ObjectKind), request.Confidence ?? 1f);
        try
        {
            return await VisibleAsync(await TripleStore.SupersedeAsync(c.ReadWrite, id, replacement, Source(request.Source), ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        }
        catch (StoreException e) when (e.InnerException is SupersedeRefusedException refused)
        {
            throw refused;
        }
    }

    public async Task<WriteAnswer> WriteEmbeddingsAsync(WriteEmbeddingsRequest? request, CancellationToken ct)
    {
        Valid(RequestValidator.Check(request, c.Limits, c.Queries.DimensionsOf(request?.Model)));
        var embeddings = request!.Embeddings!.Select(e => new NewEmbedding(e.Entity!, e.Vector!)).ToList();
        return await VisibleAsync(await TripleStore.WriteEmbeddingsAsync(c.ReadWrite, request.Model!, embeddings, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
    }

    public NeighborsResponse Neighbors(string id, string? direction, IReadOnlyList<string>? predicates, DateTimeOffset? asOf, int? limit)
    {
        var errors = new Errors();
        var d = RequestValidator.DirectionOf(errors, "direction", direction);
        errors.Range("limit", limit, 1, c.Limits.MaxLimit);
        Valid(errors);
        return c.Queries.Neighbors(id, d!.Value, predicates, asOf?.ToUnixTimeMilliseconds(), limit ?? 1000);
    }

    public TraverseResponse Traverse(TraverseRequest? request)
    {
        Valid(RequestValidator.Check(request, c.Limits));
        var d = RequestValidator.DirectionOf(new Errors(), "direction", request!.Direction);
        return c.Queries.Traverse(request.Start!, request.Hops!.Value, d!.Value, request.Predicates, request.AsOf?.ToUnixTimeMilliseconds(), request.MaxNodes ?? c.Limits.MaxNodes);
    }

    public PathResponse Paths(PathsRequest? request)
    {
        Valid(RequestValidator.Check(request, c.Limits));
        var d = RequestValidator.DirectionOf(new Errors(), "direction", request!.Direction);
        return c.Queries.Path(request.From!, request.To!, request.Kind == "cheapest", d!.Value, request.Predicates, request.AsOf?.ToUnixTimeMilliseconds(), request.MaxDepth ?? 0);
    }

    public ComponentResponse Component(string id, int? limit)
    {
        var errors = new Errors();
        errors.Range("limit", limit, 1, c.Limits.MaxLimit);
        Valid(errors);
        return c.Queries.Component(id, limit ?? 1000);
    }

    public VectorSearchResponse Search(VectorSearchRequest? request)
    {
        Valid(RequestValidator.Check(request, c.Limits, c.Queries.DimensionsOf(request?.Model)));
        return c.Queries.Search(request!.Model!, request.Vector!, request.K ?? 10, request.Ef ?? 0);
    }

    public FusionResponse Fusion(FusionRequest? request)
    {
        Valid(RequestValidator.Check(request, c.Limits, c.Queries.DimensionsOf(request?.Model)));
        var d = RequestValidator.DirectionOf(new Errors(), "direction", request!.Direction);
        var defaults = new FusionOptions();
        var options = defaults with
        {
            Candidates = request.Candidates ?? defaults.Candidates,
            Hops = request.Hops ?? defaults.Hops,
            TopN = request.TopN ?? defaults.TopN,
            Direction = d!.Value,
            SimilarityWeight = request.SimilarityWeight ?? defaults.SimilarityWeight,
            ProximityWeight = request.ProximityWeight ?? defaults.ProximityWeight,
            ConfidenceWeight = request.ConfidenceWeight ?? defaults.ConfidenceWeight,
        };
        return c.Queries.Fusion(request.Model!, request.Vector!, options);
    }

    private static void Valid(Errors errors)
    {
        if (errors.Any)
        {
            throw new InvalidRequestException(errors);
        }
    }

    private static SourceInfo? Source(SourceInput? s) => s is null ? null : new SourceInfo(s.Session, s.Actor, s.Metadata);

    // Read-your-writes: answer once this process shows the commit (the feed brings it, woken by NOTIFY).
    private async Task<WriteAnswer> VisibleAsync(WriteResult result, CancellationToken ct) =>
        new(result.Ids, result.Seq, await c.Model.WaitForAsync(result.Commit, c.VisibleTimeout, ct).ConfigureAwait(false));
}
