using MemoryCluster.Instance.Manager;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance;

/// <summary>Runs an instance manager with its HTTP API (Kestrel) until cancelled.</summary>
public static class InstanceHost
{
    public static async Task RunAsync(InstanceOptions options, ILoggerFactory loggers, IPodRoleLabeler labeler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        await using var manager = new InstanceManager(options, loggers, labeler);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggers);
        builder.WebHost.UseUrls($"http://{options.Self.Host}:{options.Self.HttpPort}");
        await using var app = builder.Build();
        Map(app, manager);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await manager.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static void Map(WebApplication app, InstanceManager manager)
    {
        app.MapGet("/healthz", () => manager.IsAlive() ? Results.Text("ok\n") : Results.Text("postgres is not running\n", statusCode: 503));
        app.MapGet("/readyz", () => manager.IsReady() ? Results.Text("ready\n") : Results.Text("not ready for its role\n", statusCode: 503));
        app.MapGet("/status", () => Results.Json(manager.Status(), InstanceManager.JsonOptions));
        app.MapGet("/metrics", () => Results.Text(manager.Metrics(), "text/plain; version=0.0.4"));
        app.MapPost("/switchover", async (HttpRequest request, CancellationToken ct) =>
        {
            SwitchoverRequest? body;
            try
            {
                body = await request.ReadFromJsonAsync<SwitchoverRequest>(InstanceManager.JsonOptions, ct).ConfigureAwait(false);
            }
            catch (System.Text.Json.JsonException e)
            {
                return Results.Json(new ManagerAnswer(false, $"the body must be JSON like {{\"to\": \"NAME\"}}: {e.Message}"), InstanceManager.JsonOptions, statusCode: 400);
            }

            if (body is null || string.IsNullOrWhiteSpace(body.To))
            {
                return Results.Json(new ManagerAnswer(false, "the body must name the target: {\"to\": \"NAME\"}"), InstanceManager.JsonOptions, statusCode: 400);
            }

            var answer = await manager.RequestSwitchoverAsync(body.To, ct).ConfigureAwait(false);
            return Results.Json(answer, InstanceManager.JsonOptions, statusCode: answer.Accepted ? 202 : 409);
        });
        MapInternal(app, "/internal/lease", manager.AcceptLeaseRequestAsync);
        MapInternal(app, "/internal/propose", manager.AcceptForwardedProposalAsync);
    }

    /// <summary>An endpoint between managers: a text body signed with the cluster key; 200 when accepted, else 409.</summary>
    private static void MapInternal(WebApplication app, string path, Func<string, string?, CancellationToken, Task<ManagerAnswer>> handle) =>
        app.MapPost(path, async (HttpRequest request, CancellationToken ct) =>
        {
            using var reader = new StreamReader(request.Body);
            var body = await reader.ReadToEndAsync(ct).ConfigureAwait(false);
            var answer = await handle(body, request.Headers[InstanceManager.SignatureHeader].FirstOrDefault(), ct).ConfigureAwait(false);
            return Results.Json(answer, InstanceManager.JsonOptions, statusCode: answer.Accepted ? 200 : 409);
        });
}
