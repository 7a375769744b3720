using MemoryCluster.Compute.Api;
using MemoryCluster.Compute.Engine.Vectors;
using MemoryCluster.Compute.Feed;
using MemoryCluster.Compute.Memory;
using MemoryCluster.Compute.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Compute;

/// <summary>The settings of a compute process (parsed and checked by the CLI).</summary>
public sealed record ComputeOptions
{
    /// <summary>Reaches the primary (in a local cluster: the multi-host string with target_session_attrs=read-write).</summary>
    public required string ReadWrite { get; init; }

    /// <summary>Reaches a replica for the bulk load, when there is one.</summary>
    public string? ReadOnly { get; init; }

    /// <summary>The URL Kestrel listens on, e.g. http://127.0.0.1:8080.</summary>
    public required string Listen { get; init; }

    /// <summary>The bearer token writes must carry.</summary>
    public required byte[] WriteToken { get; init; }

    public int MaxConnections { get; init; } = 8;

    public IReadOnlyList<string> IdentityPredicates { get; init; } = ["sameAs"];

    /// <summary>When set, every model's vectors must have this many dimensions (the API refuses others).</summary>
    public int? EmbeddingDimensions { get; init; }

    /// <summary>HNSW parameters of every model's index (its dimensions come from the model's vectors).</summary>
    public HnswOptions Vectors { get; init; } = new() { Dimensions = 1 };

    public ApiLimits Limits { get; init; } = new();

    public FeedOptions Feed { get; init; } = new();

    /// <summary>Serve MCP over standard input and output (the HTTP API still listens, MCP is not mapped on it).</summary>
    public bool Stdio { get; init; }
}

/// <summary>Runs the compute service until cancelled: schema migration, the feed follower, the HTTP API.</summary>
public static partial class ComputeHost
{
    public static async Task RunAsync(ComputeOptions options, ILoggerFactory loggers, Action<Uri>? started, CancellationToken cancellationToken)
    {
        var logger = loggers.CreateLogger("memorycluster.compute");
        await using var readWrite = new Database(new DatabaseOptions("rw", options.ReadWrite, options.MaxConnections));
        await using var readOnly = options.ReadOnly is { } ro ? new Database(new DatabaseOptions("ro", ro, Math.Max(2, options.MaxConnections / 2))) : null;
        await MigrateAsync(readWrite, logger, cancellationToken).ConfigureAwait(false);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = AppContext.BaseDirectory,
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
        });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggers);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.Services.AddProblemDetails();
        // A body that is not JSON of the right shape reaches the exception handler, which answers with a problem.
        builder.Services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(15));
        builder.WebHost.UseUrls(options.Listen);
        var model = new MemoryModel(options.Vectors, options.IdentityPredicates);
        var follower = new FeedFollower(model, readWrite, readOnly, options.Feed, loggers.CreateLogger<FeedFollower>());
        builder.Services.AddSingleton<IHostedService>(follower);
        var context = new ComputeContext(model, new Queries(model) { FixedDimensions = options.EmbeddingDimensions }, readWrite, readOnly, follower, options.Limits, options.WriteToken);
        var operations = new Operations(context);
        builder.Services.AddSingleton(context);
        builder.Services.AddSingleton(operations);
        builder.Services.AddHttpContextAccessor();
        var mcp = builder.Services.AddMcpServer(o => o.ServerInfo = new() { Name = "memorycluster-compute", Version = typeof(ComputeHost).Assembly.GetName().Version?.ToString(3) ?? "0" })
            .WithTools<MemoryTools>();
        if (options.Stdio)
        {
            mcp.WithStdioServerTransport();
        }
        else
        {
            mcp.WithHttpTransport(o => o.Stateless = true);
        }

        await using var app = builder.Build();
        app.UseExceptionHandler(new ExceptionHandlerOptions { ExceptionHandler = HandleAsync });
        Endpoints.Map(app, context, operations);
        if (!options.Stdio)
        {
            app.MapMcp("/mcp");
        }
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = new Uri(app.Urls.First());
        LogStarted(logger, address.ToString());
        started?.Invoke(address);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        finally
        {
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            // Drains: statements under way finish (for up to 10 s), then every connection closes.
            await readWrite.DrainAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            if (readOnly is not null)
            {
                await readOnly.DrainAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }

            LogStopped(logger);
        }
    }

    // The primary may not be there yet (a cluster starting, a failover): try again until it is.
    private static async Task MigrateAsync(Database database, ILogger logger, CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        while (true)
        {
            try
            {
                var applied = await MigrationRunner.MigrateAsync(database, Migration.Known, ct).ConfigureAwait(false);
                LogSchema(logger, Migration.Known.Count, applied.Count == 0 ? "none" : string.Join(", ", applied.Select(m => $"{m.Version} ({m.Name})")));
                return;
            }
            catch (StoreException e) when (e.Transient || e.InnerException is System.Net.Sockets.SocketException or TimeoutException)
            {
                LogWaiting(logger, e.Message);
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(2000, delay.TotalMilliseconds * 2));
            }
        }
    }

    private static async Task HandleAsync(HttpContext http)
    {
        var error = http.Features.Get<IExceptionHandlerFeature>()?.Error;
        var (status, title, detail) = error switch
        {
            BadHttpRequestException bad => (bad.StatusCode, "The request could not be read; nothing was changed", bad.Message),
            StoreException { Transient: true } s => (503, "The database is not reachable now; retry", s.Message),
            StoreException { Conflict: true } s => (409, "The database refused the change", s.Message),
            StoreException s => (500, "The database failed", s.Message),
            _ => (500, "Internal error", error?.Message ?? "unknown"),
        };
        var problems = http.RequestServices.GetRequiredService<IProblemDetailsService>();
        http.Response.StatusCode = status;
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = { Status = status, Title = title, Detail = detail },
        }).ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "compute service listening on {Address}")]
    private static partial void LogStarted(ILogger logger, string address);

    [LoggerMessage(Level = LogLevel.Information, Message = "compute service stopped")]
    private static partial void LogStopped(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "schema at migration {Known}; applied now: {Applied}")]
    private static partial void LogSchema(ILogger logger, int known, string applied);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the primary is not reachable for the schema migration yet: {Error}")]
    private static partial void LogWaiting(ILogger logger, string error);
}
