using System.CommandLine;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Host;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Cli.Commands;

/// <summary>
/// <c>memorycluster instance</c>: the instance manager, PID 1 of a PostgreSQL pod. Settings come from flags,
/// then MEMORYCLUSTER_* environment variables, then a <c>--config</c> file; bad settings are refused at start
/// with the key and why.
/// </summary>
internal static class InstanceCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "A file of 'key = value' lines with the settings below." };
        var command = new Command("instance", "Run the instance manager: PID 1 of a PostgreSQL pod, one Raft voter.") { config };
        var flags = InstanceOptionsParser.Keys.ToDictionary(k => k, k => new Option<string?>("--" + k) { Description = Describe(k) });
        foreach (var flag in flags.Values)
        {
            command.Add(flag);
        }

        command.SetAction(async (result, cancellationToken) =>
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            if (result.GetValue(config) is { } file)
            {
                if (!File.Exists(file))
                {
                    await Console.Error.WriteLineAsync($"memorycluster instance: config: no file at {file}").ConfigureAwait(false);
                    return 2;
                }

                var fromFile = InstanceOptionsParser.ReadFile(await File.ReadAllTextAsync(file, cancellationToken).ConfigureAwait(false), out var fileErrors);
                if (fileErrors.Count > 0)
                {
                    foreach (var error in fileErrors)
                    {
                        await Console.Error.WriteLineAsync($"memorycluster instance: {file}: {error}").ConfigureAwait(false);
                    }

                    return 2;
                }

                foreach (var (key, value) in fromFile)
                {
                    values[key] = value;
                }
            }

            foreach (var key in InstanceOptionsParser.Keys)
            {
                if (Environment.GetEnvironmentVariable(InstanceOptionsParser.EnvironmentName(key)) is { Length: > 0 } value)
                {
                    values[key] = value;
                }

                if (result.GetValue(flags[key]) is { } flag)
                {
                    values[key] = flag;
                }
            }

            var (options, errors) = InstanceOptionsParser.Parse(values);
            if (options is null)
            {
                foreach (var error in errors)
                {
                    await Console.Error.WriteLineAsync($"memorycluster instance: {error}").ConfigureAwait(false);
                }

                return 2;
            }

            using var loggers = JsonLogs();
            var (program, prefix) = Local.LocalCluster.SelfCommand();
            options = options with { WatchdogCommand = [program, .. prefix, "instance", "watchdog"] };
            // In a pod (the API server's address in the environment, and a pod name): label the pod with the role.
            using var kube = options.PodName is { } podName && Kube.Config.InClusterConfig.IsInCluster()
                ? new Kube.Client.KubeApiClient(Kube.Config.InClusterConfig.Load())
                : null;
            IPodRoleLabeler labeler = kube is null
                ? new NoPodRoleLabeler()
                : new KubePodRoleLabeler(kube, Environment.GetEnvironmentVariable("POD_NAMESPACE") ?? kube.Settings.Namespace, options.PodName!);
            try
            {
                await InstanceHost.RunAsync(options, loggers, labeler, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InvalidOperationException or InvalidDataException or IOException or UnauthorizedAccessException)
            {
                // Refused at start (data folder, membership, fence record) or a service failed: say why, exit non-zero.
                await Console.Error.WriteLineAsync($"memorycluster instance: {e.Message}").ConfigureAwait(false);
                return 1;
            }

            return 0;
        });
        command.Add(WatchdogCommand());
        return command;
    }

    /// <summary><c>memorycluster instance watchdog</c>: started by the manager beside itself; not for direct use.</summary>
    private static Command WatchdogCommand()
    {
        var dataDir = new Option<string>("--data-dir") { Description = "The PostgreSQL data directory to fence.", Required = true };
        var deadlineFile = new Option<string>("--deadline-file") { Description = "The file the manager writes the lease deadline to.", Required = true };
        var managerPid = new Option<int>("--manager-pid") { Description = "The manager's pid; the watchdog exits once it is gone and nothing is armed.", Required = true };
        var command = new Command("watchdog", "Fence PostgreSQL when the manager's lease deadline passes (started by the instance manager).") { dataDir, deadlineFile, managerPid };
        command.SetAction(async (result, cancellationToken) =>
        {
            using var loggers = JsonLogs();
            return await Watchdog.RunAsync(result.GetValue(dataDir)!, result.GetValue(deadlineFile)!, result.GetValue(managerPid), loggers.CreateLogger("memorycluster.watchdog"), cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>JSON lines on standard output (the manager's log, and its watchdog's in the same stream).</summary>
    internal static ILoggerFactory JsonLogs(bool toStandardError = false) => LoggerFactory.Create(b => b.AddJsonConsole(o =>
    {
        o.IncludeScopes = true;
        o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        o.UseUtcTimestamp = true;
    }).AddConsole(o => o.LogToStandardErrorThreshold = toStandardError ? LogLevel.Trace : LogLevel.None)
        .SetMinimumLevel(LogLevel.Information).AddFilter("Microsoft", LogLevel.Warning));

    private static string Describe(string key) => key switch
    {
        "id" => "This member's Raft id (one of the ids in --peers).",
        "data-dir" => "Absolute folder for this instance: PostgreSQL data, socket, Raft log.",
        "pg-bin-dir" => "PostgreSQL programs (default: pg_config --bindir, else /usr/lib/postgresql/*/bin).",
        "run-as" => "OS user to run PostgreSQL as (default: postgres when run as root, else yourself).",
        "peers" => "Every member: ID=NAME@HOST:PGPORT:RAFTPORT:HTTPPORT, comma-separated.",
        "cluster-key-file" => "File with the shared cluster key (at least 32 bytes) that authenticates Raft traffic.",
        "replication-password-file" => "File with the replication role's password.",
        "app-password-file" => "File with the application role's password (creates role and database 'app').",
        "superuser-password-file" => "File with the postgres role's password, set on every new primary (default: no password; the role logs in over the private socket only).",
        "parameters-file" => "postgresql.conf lines of user parameters, watched: reload-only changes are reloaded, the others reported as pendingRestart in /status.",
        "mode" => "async or quorum.",
        "join" => "true: this member joins a running cluster (it founds nothing and waits to be added through POST /members); default false.",
        "pod-name" => "Instead of --id: this member is the peer of that name (in a pod: the pod's name, MEMORYCLUSTER_POD_NAME).",
        "switchover-max-lag-bytes" => "A switchover target further behind is refused (default 16 MiB).",
        "switchover-timeout-seconds" => "How long a switchover may wait for the target (default 30).",
        "listen-address" => "Listen on this address only: the HTTP API, Raft and PostgreSQL (default: every address; PostgreSQL its peer host name). Where pods share one network namespace, the pod's IP (MEMORYCLUSTER_LISTEN_ADDRESS).",
        "primary-lease-ms" => "The primary lease: the primary fences itself 0.7 s before it ends without a renewal; a replacement is promoted 1.1 x lease + 0.7 s after the last renewal (default 2500, at least 1500).",
        _ => key,
    };
}
