using System.ComponentModel;
using MemoryCluster.Compute.Store;
using Microsoft.AspNetCore.Http;
using ModelContextProtocol;
using ModelContextProtocol.Server;

namespace MemoryCluster.Compute.Api;

/// <summary>
/// The service's operations as MCP tools (the same validation and answers as the HTTP API). Over HTTP, the write
/// tools need the service's bearer token on the MCP request; over stdio the process's owner is trusted.
/// </summary>
[McpServerToolType]
public sealed class MemoryTools(Operations ops, ComputeContext context, IHttpContextAccessor? http = null)
{
    [McpServerTool(Name = "write_triples"), Description("Store triples (subject, predicate, object; objectKind 'entity' makes an edge, 'literal' an attribute) in one transaction; returns their ids once they are visible.")]
    public Task<WriteAnswer> WriteTriples(
        [Description("The triples, at most 1,000.")] IReadOnlyList<TripleInput> triples,
        [Description("Provenance: session, actor, metadata (optional).")] SourceInput? source = null,
        CancellationToken cancellationToken = default) =>
        Run(() => ops.WriteTriplesAsync(new WriteTriplesRequest(triples, source), cancellationToken), write: true);

    [McpServerTool(Name = "supersede_triple"), Description("Close triple `id` now and store its replacement, in one transaction.")]
    public Task<WriteAnswer> SupersedeTriple(long id, string subject, string predicate, string @object, string? objectKind = null, float? confidence = null, CancellationToken cancellationToken = default) =>
        Run(() => ops.SupersedeAsync(id, new SupersedeRequest(subject, predicate, @object, objectKind, confidence, null), cancellationToken), write: true);

    [McpServerTool(Name = "write_embeddings"), Description("Store (or replace) embedding vectors of one model for entities.")]
    public Task<WriteAnswer> WriteEmbeddings(string model, IReadOnlyList<EmbeddingInput> embeddings, CancellationToken cancellationToken = default) =>
        Run(() => ops.WriteEmbeddingsAsync(new WriteEmbeddingsRequest(model, embeddings), cancellationToken), write: true);

    [McpServerTool(Name = "neighbors", ReadOnly = true), Description("The edges and literal attributes of an entity.")]
    public Task<NeighborsResponse> Neighbors(string entity, [Description("out, in or both")] string? direction = null, IReadOnlyList<string>? predicates = null, DateTimeOffset? asOf = null, int? limit = null) =>
        Run(() => Task.FromResult(ops.Neighbors(entity, direction, predicates, asOf, limit)), write: false);

    [McpServerTool(Name = "traverse", ReadOnly = true), Description("Every entity within `hops` of `start`, with its depth.")]
    public Task<TraverseResponse> Traverse(string start, int hops, string? direction = null, IReadOnlyList<string>? predicates = null, DateTimeOffset? asOf = null, int? maxNodes = null) =>
        Run(() => Task.FromResult(ops.Traverse(new TraverseRequest(start, hops, direction, predicates, asOf, maxNodes))), write: false);

    [McpServerTool(Name = "paths", ReadOnly = true), Description("The shortest (fewest edges) or cheapest (least 1 - confidence) path between two entities.")]
    public Task<PathResponse> Paths(string from, string to, [Description("shortest or cheapest")] string? kind = null, string? direction = null, IReadOnlyList<string>? predicates = null, DateTimeOffset? asOf = null, int? maxDepth = null) =>
        Run(() => Task.FromResult(ops.Paths(new PathsRequest(from, to, kind, direction, predicates, asOf, maxDepth))), write: false);

    [McpServerTool(Name = "identity_component", ReadOnly = true), Description("Every name joined to `entity` by identity predicates (sameAs by default).")]
    public Task<ComponentResponse> IdentityComponent(string entity, int? limit = null) =>
        Run(() => Task.FromResult(ops.Component(entity, limit)), write: false);

    [McpServerTool(Name = "vector_search", ReadOnly = true), Description("The entities whose embeddings are nearest to `vector`.")]
    public Task<VectorSearchResponse> VectorSearch(string model, float[] vector, int? k = null, int? ef = null) =>
        Run(() => Task.FromResult(ops.Search(new VectorSearchRequest(model, vector, k, ef))), write: false);

    [McpServerTool(Name = "fusion_search", ReadOnly = true), Description("Nearest entities expanded through the graph, scored by similarity, proximity and confidence, each hit with its path and an explanation.")]
    public Task<FusionResponse> FusionSearch(string model, float[] vector, int? candidates = null, int? hops = null, int? topN = null, string? direction = null) =>
        Run(() => Task.FromResult(ops.Fusion(new FusionRequest(model, vector, candidates, hops, topN, direction, null, null, null, null))), write: false);

    private async Task<T> Run<T>(Func<Task<T>> operation, bool write)
    {
        if (write && http?.HttpContext is { } request && !Endpoints.Authorized(request, context))
        {
            throw new McpException("writes need the bearer token (Authorization: Bearer TOKEN) of this compute service");
        }

        try
        {
            return await operation().ConfigureAwait(false);
        }
        catch (InvalidRequestException invalid)
        {
            throw new McpException($"{invalid.Message}: {string.Join("; ", invalid.Errors.ToDictionary().Select(e => $"{e.Key} {string.Join(", ", e.Value)}"))}");
        }
        catch (Exception e) when (e is NotFoundException or SupersedeRefusedException or StoreException)
        {
            throw new McpException(e.Message);
        }
    }
}
