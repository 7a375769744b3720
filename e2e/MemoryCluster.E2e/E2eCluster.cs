using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MemoryCluster.Cli.Local;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Api;

namespace MemoryCluster.E2e;

/// <summary>
/// One local cluster for a scenario, in a folder of its own under the work folder, driven through the real
/// <c>memorycluster local</c> commands. The folder holds <c>owner.pid</c> (this process), so that a later run can
/// tell the leftovers of a crashed run from a cluster another run is still using. Disposing brings it down
/// (SIGCONT first, so nothing stopped by a fault survives), removes its network and deletes the folder.
/// </summary>
internal sealed class E2eCluster : IAsyncDisposable
{
    private const string OwnerFile = "owner.pid";

    private E2eCluster(string dir, string cli)
    {
        Dir = dir;
        CliPath = cli;
    }

    public string Dir { get; }

    /// <summary>The memorycluster.dll this suite drives: MEMORYCLUSTER_E2E_CLI, or the one built beside the suite.</summary>
    public string CliPath { get; }

    public LocalLayout Layout => LocalLayout.Load(Dir) ?? throw new InvalidOperationException($"no cluster in {Dir}");

    public LocalCluster Local => new(Layout, TextWriter.Null);

    public static string DefaultCli =>
        Environment.GetEnvironmentVariable("MEMORYCLUSTER_E2E_CLI") is { Length: > 0 } cli ? cli : Path.Combine(AppContext.BaseDirectory, "memorycluster.dll");

    /// <summary>Creates and starts a cluster; throws with the output and the managers' logs when it does not become healthy.</summary>
    public static async Task<E2eCluster> UpAsync(string work, string name, int instances, string mode, bool netns, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(work);
        var dir = Path.Combine(work, $"{name}-{Guid.NewGuid().ToString("N")[..6]}");
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, OwnerFile), Environment.ProcessId.ToString(CultureInfo.InvariantCulture), cancellationToken);
        var cluster = new E2eCluster(dir, DefaultCli);
        // The fault suite runs the instances alone: the compute service has failover tests of its own.
        string[] args = ["local", "up", "--instances", instances.ToString(CultureInfo.InvariantCulture), "--mode", mode, "--timeout", "150", "--no-compute", .. netns ? new[] { "--netns" } : []];
        var (code, output) = await cluster.CliAsync(args, cancellationToken);
        if (code != 0)
        {
            var dump = await cluster.DumpAsync(cancellationToken);
            await cluster.DisposeAsync();
            throw new InvalidOperationException($"local up failed ({code}):\n{output}\n{dump}");
        }

        return cluster;
    }

    /// <summary>
    /// Removes what crashed runs left under <paramref name="work"/>: every cluster folder whose owner process is
    /// gone is continued (SIGCONT), brought down with its network, and deleted. Folders of live runs are left alone.
    /// </summary>
    public static async Task CleanLeftoversAsync(string work, TextWriter output, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(work))
        {
            return;
        }

        foreach (var dir in Directory.GetDirectories(work))
        {
            var owner = Path.Combine(dir, OwnerFile);
            if (File.Exists(owner) && int.TryParse(await File.ReadAllTextAsync(owner, cancellationToken), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && pid != Environment.ProcessId && Directory.Exists($"/proc/{pid}"))
            {
                continue;
            }

            output.WriteLine($"cleaning up {dir}, left by an earlier run");
            await new E2eCluster(dir, DefaultCli).DisposeAsync();
        }
    }

    public Task<(int Code, string Output)> CliAsync(string[] args, CancellationToken cancellationToken) =>
        RunAsync(CliPath, [.. args, "--dir", Dir], TimeSpan.FromMinutes(4), cancellationToken);

    public async Task<IReadOnlyList<(Peer Member, StatusDocument? Status)>> StatusAsync(CancellationToken cancellationToken) =>
        await Local.StatusAsync(cancellationToken);

    /// <summary>Every manager's /status (as JSON) and the tail of its log, for a failure report.</summary>
    public async Task<string> DumpAsync(CancellationToken cancellationToken)
    {
        if (LocalLayout.Load(Dir) is not { } layout)
        {
            return $"(no cluster in {Dir})";
        }

        var text = new StringBuilder();
        var statuses = await new LocalCluster(layout, TextWriter.Null).StatusAsync(cancellationToken);
        text.Append(LocalCluster.Table(statuses));
        foreach (var (member, status) in statuses)
        {
            text.Append(CultureInfo.InvariantCulture, $"--- {member.Name} /status: ").Append(status is null ? "(no answer)" : JsonSerializer.Serialize(status, InstanceJson.Options)).Append('\n');
            var log = layout.LogFile(member);
            var lines = File.Exists(log)
                ? File.ReadLines(log).Where(l => !l.Contains("\"postgres: ", StringComparison.Ordinal) || l.Contains("FATAL", StringComparison.Ordinal) || l.Contains("PANIC", StringComparison.Ordinal)).TakeLast(40)
                : [];
            text.Append(CultureInfo.InvariantCulture, $"--- {member.Name} end of {log}:\n");
            foreach (var line in lines)
            {
                text.Append(line.Length > 500 ? line[..500] : line).Append('\n');
            }
        }

        return text.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        if (LocalLayout.Load(Dir) is { } layout)
        {
            foreach (var member in layout.Members)
            {
                new NodeProcesses(layout, member).ContinueAll();
            }

            // MEMORYCLUSTER_E2E_LOGS=DIR keeps every manager's log of every cluster, for reading timelines.
            if (Environment.GetEnvironmentVariable("MEMORYCLUSTER_E2E_LOGS") is { Length: > 0 } keep)
            {
                var target = Directory.CreateDirectory(Path.Combine(keep, Path.GetFileName(Dir))).FullName;
                foreach (var member in layout.Members.Where(m => File.Exists(layout.LogFile(m))))
                {
                    File.Copy(layout.LogFile(member), Path.Combine(target, member.Name + ".log"), overwrite: true);
                }
            }

            var (code, _) = await CliAsync(["local", "down", "--purge"], CancellationToken.None);
            if (code == 0)
            {
                return;
            }

            // The command failed: make sure the network is gone anyway.
            layout.Network?.Remove(layout.Members);
        }

        if (Directory.Exists(Dir))
        {
            Directory.Delete(Dir, recursive: true);
        }
    }

    private static async Task<(int Code, string Output)> RunAsync(string dll, string[] args, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        start.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"memorycluster {string.Join(' ', args)} did not finish in {timeout.TotalSeconds:0} s");
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
