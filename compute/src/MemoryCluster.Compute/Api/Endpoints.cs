using System.Security.Cryptography;
using System.Text;
using MemoryCluster.Compute.Feed;
using MemoryCluster.Compute.Memory;
using MemoryCluster.Compute.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MemoryCluster.Compute.Api;

/// <summary>The HTTP API (docs/compute.md): thin over <see cref="Operations"/>; writes need the bearer token.</summary>
public static class Endpoints
{
    public static void Map(IEndpointRouteBuilder app, ComputeContext c, Operations ops)
    {
        var v1 = app.MapGroup("/v1");
        v1.MapPost("/triples", (HttpContext http, WriteTriplesRequest? request, CancellationToken ct) =>
            WriteAsync(http, c, () => ops.WriteTriplesAsync(request, ct)));
        v1.MapPost("/triples/{id:long}/supersede", (HttpContext http, long id, SupersedeRequest? request, CancellationToken ct) =>
            WriteAsync(http, c, () => ops.SupersedeAsync(id, request, ct)));
        v1.MapPost("/embeddings", (HttpContext http, WriteEmbeddingsRequest? request, CancellationToken ct) =>
            WriteAsync(http, c, () => ops.WriteEmbeddingsAsync(request, ct)));
        v1.MapGet("/entities/{id}/neighbors", (string id, string? direction, string[]? predicate, DateTimeOffset? asOf, int? limit) =>
            Answer(() => ops.Neighbors(id, direction, predicate, asOf, limit)));
        v1.MapPost("/traverse", (TraverseRequest? request) => Answer(() => ops.Traverse(request)));
        v1.MapPost("/paths", (PathsRequest? request) => Answer(() => ops.Paths(request)));
        v1.MapGet("/components/{id}", (string id, int? limit) => Answer(() => ops.Component(id, limit)));
        v1.MapPost("/search/vector", (VectorSearchRequest? request) => Answer(() => ops.Search(request)));
        v1.MapPost("/search/fusion", (FusionRequest? request) => Answer(() => ops.Fusion(request)));

        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", () => c.Follower.CaughtUp
            ? Results.Text("ready\n")
            : Results.Text($"not ready: {StatusReport.Of(c).Phase}{(c.Follower.LastError is { } e ? $" ({e})" : string.Empty)}\n", statusCode: 503));
        app.MapGet("/status", () => Results.Json(StatusReport.Of(c)));
        app.MapGet("/metrics", () => Results.Text(StatusReport.Metrics(c), "text/plain; version=0.0.4; charset=utf-8"));
    }

    /// <summary>True when the request carries this service's write token.</summary>
    public static bool Authorized(HttpContext http, ComputeContext c)
    {
        var header = http.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        return header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()), c.WriteToken);
    }

    private static async Task<IResult> WriteAsync(HttpContext http, ComputeContext c, Func<Task<WriteAnswer>> write)
    {
        if (!Authorized(http, c))
        {
            return Results.Problem("writes need the bearer token (Authorization: Bearer TOKEN) of this compute service", statusCode: 401, title: "Unauthorized");
        }

        try
        {
            var answer = await write().ConfigureAwait(false);
            return Results.Json(new { ids = answer.Ids, seq = answer.Seq, visible = answer.Visible }, statusCode: answer.Visible ? 201 : 202);
        }
        catch (Exception e) when (Problem(e) is { } problem)
        {
            return problem;
        }
    }

    private static IResult Answer<T>(Func<T> query)
    {
        try
        {
            return Results.Json(query());
        }
        catch (Exception e) when (Problem(e) is { } problem)
        {
            return problem;
        }
    }

    private static IResult? Problem(Exception e) => e switch
    {
        InvalidRequestException invalid => Results.ValidationProblem(invalid.Errors.ToDictionary(), title: "The request is not valid; nothing was changed"),
        NotFoundException notFound => Results.Problem(notFound.Message, statusCode: 404, title: $"Not found: {notFound.Field}"),
        SupersedeRefusedException refused => Results.Problem(refused.Message, statusCode: refused.Missing ? 404 : 409, title: refused.Missing ? "No such triple" : "Already superseded"),
        _ => null,
    };
}

/// <summary>What the endpoints share: the model, its queries, the databases, the follower and the settings.</summary>
public sealed record ComputeContext(MemoryModel Model, Queries Queries, Database ReadWrite, Database? ReadOnly, FeedFollower Follower, ApiLimits Limits, byte[] WriteToken)
{
    /// <summary>How long a write waits to show in this process before it answers 202 instead of 201.</summary>
    public TimeSpan VisibleTimeout { get; init; } = TimeSpan.FromSeconds(5);
}
