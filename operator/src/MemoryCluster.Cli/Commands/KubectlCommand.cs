using System.CommandLine;
using System.Diagnostics;
using MemoryCluster.Api;
using MemoryCluster.Cli.Local;
using MemoryCluster.Cli.Plugin;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Cli.Commands;

/// <summary>
/// <c>memorycluster kubectl</c>: the kubectl plugin (<c>kubectl memorycluster ...</c>, through the
/// <c>kubectl-memorycluster</c> script installed beside the CLI): <c>status</c>, <c>switchover</c>, <c>logs</c>,
/// <c>psql</c>, against the cluster of the current kubeconfig context, as kubectl would.
/// </summary>
internal static class KubectlCommand
{
    private static readonly Option<string?> Namespace = new("--namespace", "-n") { Description = "Namespace of the MemoryCluster (default: the kubeconfig context's).", Recursive = true };
    private static readonly Option<string?> Kubeconfig = new("--kubeconfig") { Description = "kubeconfig file (default: $KUBECONFIG or ~/.kube/config).", Recursive = true };
    private static readonly Option<string?> Context = new("--context") { Description = "kubeconfig context (default: its current-context).", Recursive = true };

    public static Command Create()
    {
        var command = new Command("kubectl", "The kubectl plugin: `kubectl memorycluster status|switchover|logs|psql NAME` (kubectl finds it as kubectl-memorycluster on PATH).")
        {
            Namespace, Kubeconfig, Context,
        };
        command.Add(StatusCommand());
        command.Add(SwitchoverCommand());
        command.Add(LogsCommand());
        command.Add(PsqlCommand());
        return command;
    }

    private static Argument<string> Name() => new("name") { Description = "The MemoryCluster." };

    private static Command StatusCommand()
    {
        var name = Name();
        var command = new Command("status", "Instances (role, timeline, position, lag, ready), conditions and recent Events of a MemoryCluster.") { name };
        command.SetAction(async (result, cancellationToken) => await WithClusterAsync(result, result.GetValue(name)!, async (client, ns, cluster) =>
        {
            var events = await EventsAsync(client, ns, cluster.Metadata.Name!, cancellationToken).ConfigureAwait(false);
            Console.Write(ClusterStatusView.Render(cluster, events, DateTimeOffset.UtcNow));
            return 0;
        }, cancellationToken).ConfigureAwait(false));
        return command;
    }

    private static Command SwitchoverCommand()
    {
        var name = Name();
        var to = new Option<string>("--to") { Description = "The instance (pod) to make the primary.", Required = true };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the new primary (0: ask and return).", DefaultValueFactory = _ => 60 };
        var command = new Command("switchover", "Make another instance the primary by a planned switchover: the operator carries it out (annotation memorycluster.io/switchover-to).") { name, to, timeout };
        command.SetAction(async (result, cancellationToken) => await WithClusterAsync(result, result.GetValue(name)!, async (client, ns, cluster) =>
        {
            var target = result.GetValue(to)!;
            var clusterName = cluster.Metadata.Name!;
            if (SwitchoverRequest.Refusal(cluster, target) is { } refusal)
            {
                Console.Error.WriteLine($"kubectl memorycluster switchover: {refusal}");
                return target == cluster.Status?.CurrentPrimary ? 0 : 1;
            }

            var startEpoch = cluster.Status?.Epoch ?? 0;
            var from = cluster.Status!.CurrentPrimary;
            var asked = DateTimeOffset.UtcNow.AddSeconds(-1);
            await client.PatchAsync(ResourceTypes.MemoryCluster, ns, clusterName, ClusterAnnotations.SwitchoverPatch(target), null, cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"switchover of {clusterName} from {from} to {target} requested");
            if (result.GetValue(timeout) <= 0)
            {
                return 0;
            }

            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(result.GetValue(timeout)))
            {
                var now = await client.GetAsync(ResourceTypes.MemoryCluster, ns, clusterName, cancellationToken).ConfigureAwait(false);

                // The Events (every one of the namespace) only once the operator has answered by removing the request.
                var refused = ClusterAnnotations.RequestedSwitchover(now.Metadata) is not null ? null
                    : (await EventsAsync(client, ns, clusterName, cancellationToken).ConfigureAwait(false))
                        .Where(e => e.Reason == "SwitchoverRefused" && e.At >= asked).Select(e => e.Note).LastOrDefault();
                switch (SwitchoverRequest.State(now, target, startEpoch, refused))
                {
                    case SwitchoverState.Done:
                        Console.WriteLine($"{target} is the primary at epoch {now.Status!.Epoch} (was {from}), after {clock.Elapsed.TotalSeconds:0.0} s");
                        return 0;
                    case SwitchoverState.Refused:
                        Console.Error.WriteLine($"kubectl memorycluster switchover: {refused}");
                        return 1;
                }

                await Task.Delay(250, cancellationToken).ConfigureAwait(false);
            }

            Console.Error.WriteLine($"kubectl memorycluster switchover: {target} is not the primary after {result.GetValue(timeout)} s; the request stands (see `kubectl memorycluster status {clusterName}`)");
            return 1;
        }, cancellationToken).ConfigureAwait(false));
        return command;
    }

    private static Command LogsCommand()
    {
        var name = Name();
        var tail = new Option<int>("--tail") { Description = "Lines of each instance's log (-1: all).", DefaultValueFactory = _ => 50 };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep streaming new lines." };
        var json = new Option<bool>("--json") { Description = "The manager's lines as logged (JSON), not made readable." };
        var command = new Command("logs", "The logs of every instance of a MemoryCluster (its manager and PostgreSQL), each line prefixed with its pod, through kubectl logs, made readable as `local logs` does.") { name, tail, follow, json };
        command.SetAction((result, cancellationToken) =>
        {
            var args = KubectlGlobals(result);
            args.AddRange(["logs", "-l", $"{ClusterLabels.Cluster}={result.GetValue(name)},{ClusterLabels.Component}={ClusterLabels.PostgresComponent}",
                "-c", "instance", "--prefix", $"--tail={result.GetValue(tail)}", "--max-log-requests=5"]);
            if (result.GetValue(follow))
            {
                args.Add("--follow");
            }

            return RunKubectlAsync(args, cancellationToken, result.GetValue(json) ? null : ManagerLog.ReadablePrefixed);
        });
        return command;
    }

    private static Command PsqlCommand()
    {
        var name = Name();
        var readOnly = new Option<bool>("--ro") { Description = "Connect through the -ro Service (a replica) instead of -rw (the primary)." };
        var superuser = new Option<bool>("--superuser") { Description = "As postgres (the -superuser Secret) instead of the application user." };
        var extra = new Argument<string[]>("psql-args") { Description = "Arguments passed on to psql (after --).", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("psql", "psql to a MemoryCluster through its -rw (or -ro) Service, with the password from its Secret. Needs a route to the Service's cluster IP (inside the cluster network); elsewhere use kubectl port-forward.")
        {
            name, readOnly, superuser, extra,
        };
        command.SetAction(async (result, cancellationToken) => await WithClusterAsync(result, result.GetValue(name)!, async (client, ns, cluster) =>
        {
            var clusterName = cluster.Metadata.Name!;
            var service = await client.GetAsync(ResourceTypes.Service, ns, $"{clusterName}-{(result.GetValue(readOnly) ? "ro" : "rw")}", cancellationToken).ConfigureAwait(false);
            var (secretName, user, database) = result.GetValue(superuser) ? ($"{clusterName}-superuser", "postgres", "postgres") : ($"{clusterName}-app", "app", "app");
            var secret = await client.GetAsync(ResourceTypes.Secret, ns, secretName, cancellationToken).ConfigureAwait(false);
            if (service.Spec?.ClusterIP is not { Length: > 0 } host || host == "None" || secret.Data?.TryGetValue("password", out var password) != true)
            {
                Console.Error.WriteLine($"kubectl memorycluster psql: {service.Metadata.Name} has no cluster IP, or {secretName} no password");
                return 1;
            }

            var start = new ProcessStartInfo("psql") { UseShellExecute = false };
            start.ArgumentList.Add($"host={host} port=5432 user={user} dbname={database} sslmode=require");
            foreach (var arg in result.GetValue(extra) ?? [])
            {
                start.ArgumentList.Add(arg);
            }

            start.Environment["PGPASSWORD"] = System.Text.Encoding.UTF8.GetString(password!);
            start.Environment["PGCONNECT_TIMEOUT"] = "10";
            try
            {
                using var psql = Process.Start(start)!;
                await psql.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
                return psql.ExitCode;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                Console.Error.WriteLine("kubectl memorycluster psql: psql is not on PATH (Debian: apt-get install postgresql-client)");
                return 1;
            }
        }, cancellationToken).ConfigureAwait(false));
        return command;
    }

    /// <summary>Connects as kubectl would, reads the MemoryCluster, and runs <paramref name="action"/>; clear errors for what fails on the way.</summary>
    private static async Task<int> WithClusterAsync(ParseResult result, string name, Func<IKubeApiClient, string, MemoryClusterResource, Task<int>> action, CancellationToken cancellationToken)
    {
        KubeClientSettings settings;
        try
        {
            settings = result.GetValue(Kubeconfig) is { } file
                ? KubeConfigLoader.Load([file], result.GetValue(Context))
                : KubeConfigLoader.FromEnvironment(result.GetValue(Context));
        }
        catch (Exception e) when (e is KubeConfigException or IOException)
        {
            Console.Error.WriteLine($"kubectl memorycluster: {e.Message}");
            return 2;
        }

        var ns = result.GetValue(Namespace) ?? settings.Namespace;
        using var client = new KubeApiClient(settings);
        try
        {
            var cluster = await client.GetAsync(ResourceTypes.MemoryCluster, ns, name, cancellationToken).ConfigureAwait(false);
            return await action(client, ns, cluster).ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
            Console.Error.WriteLine($"kubectl memorycluster: memorycluster {name} not found in namespace {ns}");
            return 1;
        }
        catch (Exception e) when (e is KubeApiException or HttpRequestException)
        {
            Console.Error.WriteLine($"kubectl memorycluster: {e.Message}");
            return 1;
        }
    }

    /// <summary>The cluster's events.k8s.io Events (those regarding the MemoryCluster itself).</summary>
    private static async Task<List<ClusterEvent>> EventsAsync(IKubeApiClient client, string ns, string name, CancellationToken cancellationToken)
    {
        var list = await client.ListAsync(ResourceTypes.Event, ns, null, cancellationToken).ConfigureAwait(false);
        return [.. list.Items
            .Where(e => e.Regarding?.Kind == ApiGroup.Kind && e.Regarding.Name == name)
            .Select(e => new ClusterEvent(
                new DateTimeOffset(e.Series?.LastObservedTime ?? e.EventTime ?? e.Metadata.CreationTimestamp ?? DateTime.UnixEpoch, TimeSpan.Zero),
                e.Type ?? "Normal",
                e.Reason ?? "",
                e.Note ?? "",
                e.Series?.Count ?? 1))];
    }

    /// <summary>kubectl's own flags for what this command was given (namespace, kubeconfig, context).</summary>
    private static List<string> KubectlGlobals(ParseResult result)
    {
        var args = new List<string>();
        if (result.GetValue(Namespace) is { } ns)
        {
            args.AddRange(["-n", ns]);
        }

        if (result.GetValue(Kubeconfig) is { } file)
        {
            args.Add($"--kubeconfig={file}");
        }

        if (result.GetValue(Context) is { } context)
        {
            args.Add($"--context={context}");
        }

        return args;
    }

    /// <summary>Runs kubectl; with <paramref name="show"/>, its output passes through it line by line (flushed, for --follow).</summary>
    private static async Task<int> RunKubectlAsync(List<string> args, CancellationToken cancellationToken, Func<string, string>? show = null)
    {
        var start = new ProcessStartInfo("kubectl") { UseShellExecute = false, RedirectStandardOutput = show is not null };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        try
        {
            using var kubectl = Process.Start(start)!;
            if (show is not null)
            {
                while (await kubectl.StandardOutput.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
                {
                    Console.Out.WriteLine(show(line));
                    Console.Out.Flush();
                }
            }

            await kubectl.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            return kubectl.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Console.Error.WriteLine("kubectl memorycluster logs: kubectl is not on PATH");
            return 1;
        }
    }
}
