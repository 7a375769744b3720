using System.Security.Cryptography;
using System.Text;
using MemoryCluster.Compute.Engine.Fusion;
using MemoryCluster.Compute.Feed;
using MemoryCluster.Compute.Memory;
using MemoryCluster.Compute.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MemoryCluster.Compute.Api;

/// <summary>The HTTP API (docs/compute.md): writes go to the primary and return once this process shows them.</summary>
public static class Endpoints
{
    public static void Map(IEndpointRouteBuilder app, ComputeContext c)
    {
        var v1 = app.MapGroup("/v1");
        v1.MapPost("/triples", async (HttpContext http, WriteTriplesRequest? request, CancellationToken ct) =>
        {
            if (Unauthorized(http, c) is { } denied)
            {
                return denied;
            }

            var errors = RequestValidator.Check(request, c.Limits);
            if (errors.Any)
            {
                return Invalid(errors);
            }

            var triples = request!.Triples!.Select(t => new NewTriple(t.Subject!, t.Predicate!, t.Object!, RequestValidator.KindOf(t.ObjectKind), t.Confidence ?? 1f)).ToList();
            var result = await TripleStore.WriteTriplesAsync(c.ReadWrite, triples, Source(request.Source), ct).ConfigureAwait(false);
            return await Written(c, result, ct).ConfigureAwait(false);
        });

        v1.MapPost("/triples/{id:long}/supersede", async (HttpContext http, long id, SupersedeRequest? request, CancellationToken ct) =>
        {
            if (Unauthorized(http, c) is { } denied)
            {
                return denied;
            }

            var errors = RequestValidator.Check(request);
            if (errors.Any)
            {
                return Invalid(errors);
            }

            try
            {
                var replacement = new NewTriple(request!.Subject!, request.Predicate!, request.Object!, RequestValidator.KindOf(request.ObjectKind), request.Confidence ?? 1f);
                var result = await TripleStore.SupersedeAsync(c.ReadWrite, id, replacement, Source(request.Source), ct).ConfigureAwait(false);
                return await Written(c, result, ct).ConfigureAwait(false);
            }
            catch (StoreException e) when (e.InnerException is SupersedeRefusedException refused)
            {
                return Results.Problem(refused.Message, statusCode: refused.Missing ? 404 : 409, title: refused.Missing ? "No such triple" : "Already superseded");
            }
        });

        v1.MapPost("/embeddings", async (HttpContext http, WriteEmbeddingsRequest? request, CancellationToken ct) =>
        {
            if (Unauthorized(http, c) is { } denied)
            {
                return denied;
            }

            var errors = RequestValidator.Check(request, c.Limits, c.Queries.DimensionsOf(request?.Model));
            if (errors.Any)
            {
                return Invalid(errors);
            }

            var result = await TripleStore.WriteEmbeddingsAsync(c.ReadWrite, request!.Model!, request.Embeddings!.Select(e => new NewEmbedding(e.Entity!, e.Vector!)).ToList(), ct).ConfigureAwait(false);
            return await Written(c, result, ct).ConfigureAwait(false);
        });

        v1.MapGet("/entities/{id}/neighbors", (string id, string? direction, string[]? predicate, DateTimeOffset? asOf, int? limit) =>
        {
            var errors = new Errors();
            var d = RequestValidator.DirectionOf(errors, "direction", direction);
            errors.Range("limit", limit, 1, c.Limits.MaxLimit);
            return errors.Any ? Invalid(errors) : Answer(() => c.Queries.Neighbors(id, d!.Value, predicate, asOf?.ToUnixTimeMilliseconds(), limit ?? 1000));
        });

        v1.MapPost("/traverse", (TraverseRequest? request) =>
        {
            var errors = RequestValidator.Check(request, c.Limits);
            var d = RequestValidator.DirectionOf(new Errors(), "direction", request?.Direction);
            return errors.Any ? Invalid(errors) : Answer(() => c.Queries.Traverse(request!.Start!, request.Hops!.Value, d!.Value, request.Predicates, request.AsOf?.ToUnixTimeMilliseconds(), request.MaxNodes ?? c.Limits.MaxNodes));
        });

        v1.MapPost("/paths", (PathsRequest? request) =>
        {
            var errors = RequestValidator.Check(request, c.Limits);
            var d = RequestValidator.DirectionOf(new Errors(), "direction", request?.Direction);
            return errors.Any ? Invalid(errors) : Answer(() => c.Queries.Path(request!.From!, request.To!, request.Kind == "cheapest", d!.Value, request.Predicates, request.AsOf?.ToUnixTimeMilliseconds(), request.MaxDepth ?? 0));
        });

        v1.MapGet("/components/{id}", (string id, int? limit) =>
        {
            var errors = new Errors();
            errors.Range("limit", limit, 1, c.Limits.MaxLimit);
            return errors.Any ? Invalid(errors) : Answer(() => c.Queries.Component(id, limit ?? 1000));
        });

        v1.MapPost("/search/vector", (VectorSearchRequest? request) =>
        {
            var errors = RequestValidator.Check(request, c.Limits, c.Queries.DimensionsOf(request?.Model));
            return errors.Any ? Invalid(errors) : Answer(() => c.Queries.Search(request!.Model!, request.Vector!, request.K ?? 10, request.Ef ?? 0));
        });

        v1.MapPost("/search/fusion", (FusionRequest? request) =>
        {
            var errors = RequestValidator.Check(request, c.Limits, c.Queries.DimensionsOf(request?.Model));
            var d = RequestValidator.DirectionOf(new Errors(), "direction", request?.Direction);
            if (errors.Any)
            {
                return Invalid(errors);
            }

            var defaults = new FusionOptions();
            var options = defaults with
            {
                Candidates = request!.Candidates ?? defaults.Candidates,
                Hops = request.Hops ?? defaults.Hops,
                TopN = request.TopN ?? defaults.TopN,
                Direction = d!.Value,
                SimilarityWeight = request.SimilarityWeight ?? defaults.SimilarityWeight,
                ProximityWeight = request.ProximityWeight ?? defaults.ProximityWeight,
                ConfidenceWeight = request.ConfidenceWeight ?? defaults.ConfidenceWeight,
            };
            return Answer(() => c.Queries.Fusion(request.Model!, request.Vector!, options));
        });

        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", () => c.Follower.CaughtUp
            ? Results.Text("ready\n")
            : Results.Text($"not ready: {StatusReport.Of(c).Phase}{(c.Follower.LastError is { } e ? $" ({e})" : string.Empty)}\n", statusCode: 503));
        app.MapGet("/status", () => Results.Json(StatusReport.Of(c)));
        app.MapGet("/metrics", () => Results.Text(StatusReport.Metrics(c), "text/plain; version=0.0.4; charset=utf-8"));
    }

    private static async Task<IResult> Written(ComputeContext c, WriteResult result, CancellationToken ct)
    {
        // Read-your-writes: answer once this process shows the commit (the feed brings it, woken by NOTIFY).
        var visible = await c.Model.WaitForAsync(result.Seq, c.VisibleTimeout, ct).ConfigureAwait(false);
        return Results.Json(new { ids = result.Ids, seq = result.Seq, visible }, statusCode: visible ? 201 : 202);
    }

    private static IResult Answer<T>(Func<T> query)
    {
        try
        {
            return Results.Json(query());
        }
        catch (NotFoundException e)
        {
            return Results.Problem(e.Message, statusCode: 404, title: $"Not found: {e.Field}");
        }
    }

    private static IResult Invalid(Errors errors) =>
        Results.ValidationProblem(errors.ToDictionary(), title: "The request is not valid; nothing was changed");

    private static SourceInfo? Source(SourceInput? s) => s is null ? null : new SourceInfo(s.Session, s.Actor, s.Metadata);

    private static IResult? Unauthorized(HttpContext http, ComputeContext c)
    {
        var header = http.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()), c.WriteToken))
        {
            return null;
        }

        return Results.Problem("writes need the bearer token (Authorization: Bearer TOKEN) of this compute service", statusCode: 401, title: "Unauthorized");
    }
}

/// <summary>What the endpoints share: the model, its queries, the databases, the follower and the settings.</summary>
public sealed record ComputeContext(MemoryModel Model, Queries Queries, Database ReadWrite, Database? ReadOnly, FeedFollower Follower, ApiLimits Limits, byte[] WriteToken)
{
    /// <summary>How long a write waits to show in this process before it answers 202 instead of 201.</summary>
    public TimeSpan VisibleTimeout { get; init; } = TimeSpan.FromSeconds(5);
}
