using MemoryCluster.Kube.Cluster.Local;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Kube.Cluster;

/// <summary>
/// <c>up --state DIR --bin DIR --crd FILE [--chart FILE]</c>: runs a one-machine cluster until SIGTERM or Ctrl-C, then
/// stops its pods and everything else. Writes DIR/kubeconfig, installs the rendered chart when given (the operator
/// Available), then writes DIR/ready (what <c>make kube-up</c> waits for).
/// <c>scenarios ... --chart FILE [--runs N]</c>: <see cref="Scenarios"/> on a cluster of its own (<c>make e2e-kube</c>).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args is not [("up" or "scenarios") and var verb, .. var rest] || Options(rest) is not { } options)
        {
            await Console.Error.WriteLineAsync("usage: up --state DIR --bin DIR --crd FILE [--chart FILE] | scenarios --state DIR --bin DIR --crd FILE --chart FILE [--runs N]").ConfigureAwait(false);
            return 2;
        }

        if (Environment.UserName != "root")
        {
            await Console.Error.WriteLineAsync("up: the node makes namespaces and mounts: run as root").ConfigureAwait(false);
            return 2;
        }

        using var logging = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.TimestampFormat = "HH:mm:ss.fff ").SetMinimumLevel(LogLevel.Information));
        using var stop = new CancellationTokenSource();
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        if (verb == "scenarios")
        {
            using var quiet = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.TimestampFormat = "HH:mm:ss.fff ").SetMinimumLevel(LogLevel.Warning));
            // Networks apart from make kube-up's, so both can run at once.
            var scenarioOptions = new OneMachineOptions(options.State, [options.Bin], await File.ReadAllTextAsync(options.Crd).ConfigureAwait(false))
            {
                PodNetwork = System.Net.IPNetwork.Parse("127.13.0.0/16"),
                ServiceNetwork = System.Net.IPNetwork.Parse("127.99.0.0/16"),
            };
            return await Scenarios.RunAsync(scenarioOptions,
                options.Chart ?? throw new ArgumentException("--chart is required"), options.Runs, quiet, stop.Token).ConfigureAwait(false);
        }

        var ready = Path.Combine(options.State, "ready");
        File.Delete(ready);
        await using (var cluster = await OneMachineCluster.StartAsync(new OneMachineOptions(options.State, [options.Bin], await File.ReadAllTextAsync(options.Crd).ConfigureAwait(false)), logging, stop.Token).ConfigureAwait(false))
        {
            if (options.Chart is { } chart)
            {
                Console.WriteLine($"API server at {cluster.Server.Url}; installing the operator from the chart");
                new Kubectl(cluster.KubeconfigPath).InstallChart(chart, TimeSpan.FromSeconds(180));
            }

            await File.WriteAllTextAsync(ready, cluster.Server.Url.ToString()).ConfigureAwait(false);
            Console.WriteLine($"export KUBECONFIG={cluster.KubeconfigPath}");
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Console.WriteLine("stopping: pods first");
            }
        }

        File.Delete(ready);
        return 0;
    }

    private static (string State, string Bin, string Crd, string? Chart, int Runs)? Options(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            values[args[i]] = args[i + 1];
        }

        return values.TryGetValue("--state", out var state) && values.TryGetValue("--bin", out var bin) && values.TryGetValue("--crd", out var crd)
            ? (Path.GetFullPath(state), Path.GetFullPath(bin), crd, values.GetValueOrDefault("--chart"),
                values.TryGetValue("--runs", out var runs) && int.TryParse(runs, System.Globalization.CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 5)
            : null;
    }
}
