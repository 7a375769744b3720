using System.Diagnostics;
using MemoryCluster.Cli.Tests.Chart;
using MemoryCluster.Kube.Cluster.Local;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Cli.Tests.Kube;

/// <summary>
/// A one-machine Kubernetes with the operator installed from the chart, driven through the real kubectl as a user
/// would after <c>make kube-up</c>. Everything it started stops when disposed, also when a test fails, and the
/// disposal checks that no pod process is left behind.
/// </summary>
internal sealed class OneMachineHarness : IAsyncDisposable
{
    private readonly string _state;

    private readonly string _cli;

    private OneMachineHarness(string state, string cli, OneMachineCluster cluster)
    {
        _state = state;
        _cli = cli;
        Cluster = cluster;
    }

    public OneMachineCluster Cluster { get; }

    public static async Task<OneMachineHarness> StartAsync()
    {
        Assert.True(Environment.UserName == "root", "the one-machine node makes mount and PID namespaces for its pods: run the tests as root (CI does)");
        var state = Directory.CreateTempSubdirectory("kube-").FullName;
        File.SetUnixFileMode(state, (UnixFileMode)Convert.ToInt32("755", 8));
        var cli = CliFolder(state);
        var cluster = await OneMachineCluster.StartAsync(
            new OneMachineOptions(state, [cli], await File.ReadAllTextAsync(ChartTools.Crd))
            {
                // Networks of their own: other test assemblies run their nodes at the same time.
                PodNetwork = System.Net.IPNetwork.Parse("127.12.0.0/16"),
                ServiceNetwork = System.Net.IPNetwork.Parse("127.98.0.0/16"),
            }, NullLoggerFactory.Instance, CancellationToken.None);
        var harness = new OneMachineHarness(state, cli, cluster);
        try
        {
            var values = Path.Combine(state, "values.yaml");
            await File.WriteAllTextAsync(values, "bindPodIP: true\n");
            var chart = Path.Combine(state, "chart.yaml");
            await File.WriteAllTextAsync(chart, ChartTools.RenderOrFail("-f", values));
            try
            {
                new Kubectl(cluster.KubeconfigPath).InstallChart(chart, TimeSpan.FromSeconds(180));
            }
            catch (InvalidOperationException e)
            {
                throw new InvalidOperationException($"{e.Message}\n{harness.Diagnostics()}", e);
            }

            return harness;
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }
    }

    /// <summary>kubectl, with the CLI's folder first on its PATH: <c>kubectl memorycluster</c> is the plugin built with the tests.</summary>
    public (int Code, string Stdout, string Stderr) Kubectl(IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null) =>
        new Kubectl(Cluster.KubeconfigPath, _cli).Run(args, stdin, timeout);

    public string KubectlOrFail(IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null)
    {
        var list = args.ToList();
        var (code, stdout, stderr) = Kubectl(list, stdin, timeout);
        Assert.True(code == 0, $"kubectl {string.Join(' ', list)} exited {code}: {stderr}{stdout}\n{Diagnostics()}");

        return stdout;
    }

    /// <summary>Every pod's state and the last lines of its logs, for a failure's message.</summary>
    public string Diagnostics()
    {
        var pods = Kubectl(["get", "pods", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {.status.phase} {.status.containerStatuses}{\"\\n\"}{end}"]).Stdout;
        return $"pods:\n{pods}\n{PodLogs()}";
    }

    /// <summary>The last lines of every pod's logs, for a failure's message.</summary>
    public string PodLogs()
    {
        var pods = Path.Combine(_state, "pods");
        if (!Directory.Exists(pods))
        {
            return "";
        }

        return string.Join('\n', Directory.EnumerateFiles(pods, "*.log", SearchOption.AllDirectories)
            .Select(f => $"== {f}\n{string.Join('\n', File.ReadLines(f).TakeLast(8).Select(l => l.Length > 300 ? l[..300] : l))}"));
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        var left = Process.GetProcesses().Where(p =>
        {
            try
            {
                return File.ReadAllText($"/proc/{p.Id}/cmdline").Contains(_state, StringComparison.Ordinal);
            }
            catch (IOException)
            {
                return false;
            }
        }).Select(p => p.Id).ToList();
        foreach (var pid in left)
        {
            Process.GetProcessById(pid).Kill(entireProcessTree: true);
        }

        Directory.Delete(_state, recursive: true);
        Assert.True(left.Count == 0, $"processes left behind by the cluster: {string.Join(", ", left)}");
    }

    /// <summary>
    /// Where the pods find the CLI: its build output, or a copy in the state folder when a folder above it is closed
    /// to other users (the pods run as uid 26).
    /// </summary>
    private static string CliFolder(string state)
    {
        var folder = AppContext.BaseDirectory.TrimEnd('/');
        var open = true;
        for (var dir = new DirectoryInfo(folder); dir is not null; dir = dir.Parent)
        {
            open &= (dir.UnixFileMode & UnixFileMode.OtherExecute) != 0;
        }

        if (open)
        {
            return folder;
        }

        var copy = Path.Combine(state, "cli");
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.EnumerateFiles(folder))
        {
            File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        }

        return copy;
    }
}
