using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Host;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance;

/// <summary>
/// Runs an instance manager until cancelled: the pure <see cref="InstanceNode"/> inside its driver, the services
/// that act for it (Raft, the watchdog, PostgreSQL's supervisor and observer, the peers, metrics), each a hosted
/// service whose lifetime the host owns, and the HTTP API on Kestrel.
/// </summary>
public static class InstanceHost
{
    public static async Task RunAsync(InstanceOptions options, ILoggerFactory loggers, IPodRoleLabeler labeler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        var logger = loggers.CreateLogger("memorycluster.instance");
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["instance"] = options.Name, ["id"] = options.Id });
        var binaries = PgBinaries.Locate(options.PgBinDir, options.RunAsUser);

        // Before anything reads the data: the Raft state and PostgreSQL data of a removed member whose volume came back
        // under a new id (a scale down, then up) are set aside, and it joins afresh. (In a pod nothing of an earlier
        // container runs; a local cluster never gives a folder a new id.)
        RaftIdentity.Prepare(options.RaftDirectory, options.DataDirectory, options.Id, options.Join, m => Log.Identity(logger, m));
        var directory = new MemberDirectory(options);
        var files = new PostgresFiles(options, binaries, directory);
        await files.PrepareAsync(cancellationToken).ConfigureAwait(false);
        var (fencedEpoch, fenceReason) = files.ReadFence();

        // No configuration files are read, so none is watched: by default the host watches its content root (the
        // working directory, in a local cluster the folder of every member's data) recursively for appsettings
        // changes, and every WAL write of every member woke every manager.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = AppContext.BaseDirectory,
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
        });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggers);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.Services.Configure<HostOptions>(o =>
        {
            o.ShutdownTimeout = TimeSpan.FromSeconds(30);
            o.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.StopHost;
        });
        builder.WebHost.UseUrls($"http://{options.ListenHost}:{options.Self.HttpPort}");
        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(new ClusterKey(File.ReadAllBytes(options.ClusterKeyFile)));
        services.AddSingleton(binaries);
        services.AddSingleton(new PgTools(binaries));
        services.AddSingleton(new PgClient(options.SocketDirectory, options.Self.PgPort));
        services.AddSingleton(files);
        services.AddSingleton(directory);
        services.AddSingleton(labeler);
        services.AddSingleton(new InstanceNode(NodeConfigFor(options)));
        services.AddSingleton<ManagerClock>();
        services.AddSingleton<NodeDriver>();
        services.AddSingleton<StatusReporter>();
        services.AddSingleton<InstanceMetrics>();
        services.AddSingleton<MembershipService>();

        // Started in this order and stopped in the reverse: the clock beats first and stops last (Raft ticks while the
        // rest stops); the driver starts ticking the node last and stops first; PostgreSQL stops (cleanly) before the
        // watchdog is disarmed for good and before Raft goes.
        AddHosted<ManagerClock>(services);
        AddHosted<RaftService>(services);
        AddHosted<WatchdogSupervisor>(services);
        AddHosted<PostgresSupervisor>(services);
        AddHosted<TlsReloader>(services);
        services.AddSingleton(sp => new ParametersService(
            options,
            binaries,
            sp.GetRequiredService<PgTools>(),
            sp.GetRequiredService<PgClient>(),
            () => sp.GetRequiredService<PostgresSupervisor>() is { Running: true, Postgres: { } postgres } ? postgres.Pid : null,
            sp.GetRequiredService<TimeProvider>(),
            loggers.CreateLogger("memorycluster.instance.parameters")));
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<ParametersService>());
        AddHosted<PostgresObserver>(services);
        AddHosted<PeerRpc>(services);
        AddHosted<RoleLabeler>(services);
        AddHosted<PostgresMetricsCollector>(services);
        AddHosted<NodeDriver>(services);

        await using var app = builder.Build();
        app.Services.GetRequiredService<NodeDriver>().SetStarted(PostgresFiles.DataKindOf(options.DataDirectory), fencedEpoch, fenceReason);
        Map(app);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        Log.Started(logger, options.Name, options.Self.ToString());

        // Crash-only: a service that fails stops the host (BackgroundServiceExceptionBehavior.StopHost), and then the
        // manager exits with an error (its supervisor, or Kubernetes, starts it again) rather than run on without it.
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        try
        {
            await Task.Delay(Timeout.Infinite, lifetime.ApplicationStopping).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        finally
        {
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            Log.Stopped(logger, options.Name);
        }

        if (!cancellationToken.IsCancellationRequested)
        {
            throw new InvalidOperationException("a service of the instance manager failed and stopped it; its log says which and why");
        }
    }

    /// <summary>The node's settings, from the manager's options.</summary>
    public static NodeConfig NodeConfigFor(InstanceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new NodeConfig(
            new MemberId(options.Id),
            [.. options.Peers.Select(p => new NodeMember(new MemberId(p.Id), p.Name))],
            options.Quorum ? ReplicationMode.Quorum : ReplicationMode.Async,
            options.Lease,
            options.SwitchoverMaxLagBytes,
            (long)options.SwitchoverTimeout.TotalMilliseconds,
            options.WatchdogCommand is not null);
    }

    private static void AddHosted<T>(IServiceCollection services)
        where T : class, IHostedService
    {
        services.AddSingleton<T>();
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<T>());
    }

    private static void Map(WebApplication app)
    {
        var status = app.Services.GetRequiredService<StatusReporter>();
        var driver = app.Services.GetRequiredService<NodeDriver>();
        var peers = app.Services.GetRequiredService<PeerRpc>();
        var metrics = app.Services.GetRequiredService<InstanceMetrics>();
        app.MapGet("/healthz", () => status.Health() is (true, _) ? Results.Text("ok\n") : Results.Text(status.Health().Why + "\n", statusCode: 503));
        app.MapGet("/readyz", () => status.Ready() is (true, _) ? Results.Text("ready\n") : Results.Text($"not ready for its role: {status.Ready().Why}\n", statusCode: 503));
        var observer = app.Services.GetRequiredService<PostgresObserver>();
        app.MapGet("/status", async (bool? fresh, CancellationToken ct) =>
        {
            if (fresh == true)
            {
                // The Raft leader, deciding a failover, wants PostgreSQL's state as of now.
                await observer.ObserveNowAsync(TimeSpan.FromMilliseconds(300), ct).ConfigureAwait(false);
            }

            return Results.Json(status.Status(), InstanceJson.Options);
        });
        app.MapGet("/history", () => Results.Json(status.History(), InstanceJson.Options));
        app.MapGet("/metrics", async (HttpResponse response, CancellationToken ct) =>
        {
            response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await metrics.WriteAsync(response.Body, ct).ConfigureAwait(false);
        });
        var guard = new SignatureGuard(app.Services.GetRequiredService<ClusterKey>().Bytes, app.Services.GetRequiredService<TimeProvider>(), app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("memorycluster.instance.api"));
        app.MapSigned("POST", "/switchover", InstanceApiClient.SwitchoverPurpose, guard, async (text, _, ct) =>
        {
            var body = ParseBody<SwitchoverRequest>(text.Length == 0 ? "{}" : text, out var why);
            if (body is null)
            {
                return Results.Json(new ManagerAnswer(false, $"the body must be JSON like {{\"to\": \"NAME\"}} (or empty for the most caught-up replica): {why}"), InstanceJson.Options, statusCode: 400);
            }

            await peers.ReadReportsNowAsync(ct).ConfigureAwait(false);
            var (command, message, inProgressAt) = driver.Read((node, _) => node.CheckSwitchover(string.IsNullOrWhiteSpace(body?.To) ? null : body!.To));
            if (inProgressAt is { } epoch)
            {
                // The same switchover is already requested (a client retrying after a lost answer): accepted again.
                return Results.Json(new ManagerAnswer(true, message, epoch), InstanceJson.Options, statusCode: 202);
            }

            if (command is null)
            {
                return Results.Json(new ManagerAnswer(false, message), InstanceJson.Options, statusCode: 409);
            }

            var answer = await peers.ProposeHereOrForwardAsync(command, ct).ConfigureAwait(false);
            return answer.Accepted
                ? Results.Json(new ManagerAnswer(true, message, command.ExpectedEpoch), InstanceJson.Options, statusCode: 202)
                : Results.Json(answer, InstanceJson.Options, statusCode: 409);
        });
        app.MapSigned("POST", "/maintenance", InstanceApiClient.MaintenancePurpose, guard, async (text, _, ct) =>
        {
            if (ParseBody<MaintenanceRequest>(text, out string _)?.On is not { } on)
            {
                return Results.Json(new ManagerAnswer(false, "the body must be JSON like {\"on\": true} (pause automatic failover) or {\"on\": false} (resume it)"), InstanceJson.Options, statusCode: 400);
            }

            // The epoch is only the compare-and-set guard of the command: a change of primary in between is retried.
            ManagerAnswer answer = new(false, "not tried");
            for (var attempt = 0; attempt < 3; attempt++)
            {
                var (command, message) = driver.Read((node, _) => node.CheckMaintenance(on));
                if (command is null)
                {
                    return Results.Json(new ManagerAnswer(true, message), InstanceJson.Options);
                }

                answer = await peers.ProposeHereOrForwardAsync(command, ct).ConfigureAwait(false);
                if (answer.Accepted)
                {
                    return Results.Json(new ManagerAnswer(true, message, command.ExpectedEpoch), InstanceJson.Options, statusCode: 202);
                }
            }

            return Results.Json(answer, InstanceJson.Options, statusCode: 409);
        });
        app.MapSigned("POST", "/failover", InstanceApiClient.FailoverPurpose, guard, (text, _, _) =>
        {
            var body = ParseBody<SwitchoverRequest>(text.Length == 0 ? "{}" : text, out var why);
            if (body is null)
            {
                return Task.FromResult(Results.Json(new ManagerAnswer(false, $"the body must be JSON like {{\"to\": \"NAME\"}} (or empty for the best candidate): {why}"), InstanceJson.Options, statusCode: 400));
            }

            var to = string.IsNullOrWhiteSpace(body.To) ? null : body.To;
            var (accepted, message, epoch) = driver.Read((node, _) =>
            {
                var (ok, text, _) = node.CheckFailover(to);
                return (ok, text, node.Control.Epoch);
            });
            if (!accepted)
            {
                return Task.FromResult(Results.Json(new ManagerAnswer(false, message), InstanceJson.Options, statusCode: 409));
            }

            driver.Step(now => new FailoverRequested(now, to));
            return Task.FromResult(Results.Json(new ManagerAnswer(true, message, epoch), InstanceJson.Options, statusCode: 202));
        });
        app.MapSigned("POST", "/reinit", InstanceApiClient.ReinitPurpose, guard, (_, _, _) =>
        {
            var (accepted, message) = driver.Read((node, _) => node.CheckReinit());
            if (!accepted)
            {
                return Task.FromResult(Results.Json(new ManagerAnswer(false, message), InstanceJson.Options, statusCode: 409));
            }

            driver.Step(now => new ReinitRequested(now));
            return Task.FromResult(Results.Json(new ManagerAnswer(true, message), InstanceJson.Options, statusCode: 202));
        });
        var membership = app.Services.GetRequiredService<MembershipService>();
        app.MapGet("/members", async (CancellationToken ct) => Results.Json(await membership.ListAsync(ct).ConfigureAwait(false), InstanceJson.Options));
        app.MapSigned("POST", "/members", InstanceApiClient.AddMemberPurpose, guard, async (text, _, ct) =>
        {
            if (ParseBody<AddMemberRequest>(text, out var why) is not { } body)
            {
                return Results.Json(new ManagerAnswer(false, $"the body must be JSON like {{\"id\": 4, \"name\": \"mc-4\", \"host\": \"10.0.0.4\", \"pgPort\": 5432, \"raftPort\": 7000, \"httpPort\": 8008}}: {why}"), InstanceJson.Options, statusCode: 400);
            }

            var (code, answer) = await membership.AddAsync(body, ct).ConfigureAwait(false);
            return Results.Json(answer, InstanceJson.Options, statusCode: code);
        });
        app.MapSigned("DELETE", "/members/{id}", InstanceApiClient.RemoveMemberPurpose, guard, async (_, context, ct) =>
        {
            if (!ulong.TryParse(context.Request.RouteValues["id"] as string, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) || id == 0)
            {
                return Results.Json(new ManagerAnswer(false, "DELETE /members/ID: the id is a member's Raft id (1 or more)"), InstanceJson.Options, statusCode: 400);
            }

            var (code, answer) = await membership.RemoveAsync(new MemberId(id), ct).ConfigureAwait(false);
            return Results.Json(answer, InstanceJson.Options, statusCode: code);
        });
        MapInternal(app, "/internal/lease", peers.AcceptLeaseRequestAsync);
        MapInternal(app, "/internal/propose", peers.AcceptForwardedProposalAsync);
        MapInternal(app, "/internal/fenced", peers.AcceptFencedNoticeAsync);
    }

    /// <summary>
    /// A signed request's JSON body as <typeparamref name="T"/>; null when it is not one, with <paramref name="why"/>:
    /// the parser's message, or the body itself when it parsed to nothing (<c>null</c>).
    /// </summary>
    private static T? ParseBody<T>(string text, out string why)
        where T : class
    {
        try
        {
            why = text;
            return System.Text.Json.JsonSerializer.Deserialize<T>(text, InstanceJson.Options);
        }
        catch (System.Text.Json.JsonException e)
        {
            why = e.Message;
            return null;
        }
    }

    /// <summary>An endpoint between managers: a text body signed with the cluster key; 200 when accepted, else 409.</summary>
    private static void MapInternal(WebApplication app, string path, Func<string, string?, CancellationToken, Task<ManagerAnswer>> handle) =>
        app.MapPost(path, async (HttpRequest request, CancellationToken ct) =>
        {
            using var reader = new StreamReader(request.Body);
            var body = await reader.ReadToEndAsync(ct).ConfigureAwait(false);
            var answer = await handle(body, request.Headers[InstanceApiClient.SignatureHeader].FirstOrDefault(), ct).ConfigureAwait(false);
            return Results.Json(answer, InstanceJson.Options, statusCode: answer.Accepted ? 200 : 409);
        });
}

internal static partial class Log
{
    [LoggerMessage(10, LogLevel.Information, "instance manager {Name} started ({Self})")]
    public static partial void Started(ILogger logger, string name, string self);

    [LoggerMessage(11, LogLevel.Information, "instance manager {Name} stopped")]
    public static partial void Stopped(ILogger logger, string name);

    [LoggerMessage(12, LogLevel.Warning, "{Message}")]
    public static partial void Identity(ILogger logger, string message);
}
