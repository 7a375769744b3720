using MemoryCluster.Cli.Local;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Node;
using Npgsql;

namespace MemoryCluster.Cli.Tests.Local;

/// <summary>
/// A real local cluster for one test, driven through the memorycluster binary. Disposing brings it down and
/// deletes its folder, and on a failed test the managers' logs are what the assertion messages carry.
/// </summary>
internal sealed class LocalClusterRun : IAsyncDisposable
{
    private LocalClusterRun(string dir) => Dir = dir;

    public string Dir { get; }

    public LocalLayout Layout => LocalLayout.Load(Dir)!;

    public static async Task<LocalClusterRun> UpAsync(int instances, string mode, bool compute = false)
    {
        var run = new LocalClusterRun(Directory.CreateTempSubdirectory("mc-local-").FullName);
        // The compute service is tested on its own (UpAsync with compute: true, and tests/MemoryCluster.Compute.Tests).
        string[] extra = compute ? [] : ["--no-compute"];
        var (code, stdout, stderr) = Tests.Cli.Run(["local", "up", "--dir", run.Dir, "--instances", instances.ToString(System.Globalization.CultureInfo.InvariantCulture), "--mode", mode, "--timeout", "120", .. extra]);
        if (code != 0)
        {
            var logs = run.Logs();
            await run.DisposeAsync();
            Assert.Fail($"local up failed ({code}):\n{stdout}\n{stderr}\n{logs}");
        }

        return run;
    }

    public (int Code, string Stdout, string Stderr) Cli(params string[] args) =>
        Tests.Cli.Run([.. args, "--dir", Dir]);

    /// <summary>A command that runs until interrupted (<c>--watch</c>, <c>-f</c>): interrupted once its output satisfies <paramref name="enough"/>.</summary>
    public (int Code, string Stdout, string Stderr) CliUntil(Func<string, bool> enough, params string[] args) =>
        TestProcess.RunUntil("dotnet", [Path.Combine(AppContext.BaseDirectory, "memorycluster.dll"), .. args, "--dir", Dir], enough, TimeSpan.FromSeconds(60));

    public async Task<IReadOnlyList<(Instance.Peer Member, StatusDocument? Status)>> StatusAsync() =>
        await new LocalCluster(Layout, TextWriter.Null).StatusAsync(CancellationToken.None);

    public async Task<(string Name, ulong Epoch)> PrimaryAsync()
    {
        var primary = (await StatusAsync()).Single(s => s.Status is { Role: InstanceRole.Primary });
        return (primary.Member.Name, primary.Status!.Epoch.Value);
    }

    public async Task WaitHealthyAsync()
    {
        var healthy = await new LocalCluster(Layout, TextWriter.Null).WaitHealthyAsync(TimeSpan.FromSeconds(60), CancellationToken.None);
        Assert.True(healthy, $"the cluster did not become healthy\n{LocalCluster.Table(await StatusAsync())}\n{Logs()}");
    }

    /// <summary>Read-write connection string over every instance, as the application role.</summary>
    public string ReadWrite => Npgsql(readOnly: false, host: null);

    /// <summary>A connection string to one instance only.</summary>
    public string Direct(string name) => Npgsql(readOnly: false, host: Layout.Members.Single(m => m.Name == name));

    private string Npgsql(bool readOnly, Instance.Peer? host)
    {
        var layout = Layout;
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = host is null ? string.Join(',', layout.Members.Select(m => $"{m.Host}:{m.PgPort}")) : host.Host,
            Port = host?.PgPort ?? 5432,
            Username = "app",
            Database = "app",
            Passfile = layout.PgPassFile,
            // The writer pools (and clears the pools on errors); one-off checks of one instance do not.
            Pooling = host is null,
            Timeout = 2,
        };
        if (host is null)
        {
            builder.TargetSessionAttributes = readOnly ? "prefer-standby" : "read-write";

            // Npgsql remembers which host was primary for HostRecheckSeconds (default 10): re-check within a
            // second, or the client itself keeps writing to a demoted host long after the switchover.
            builder.HostRecheckSeconds = 1;
        }

        return builder.ConnectionString;
    }

    public async Task<long> CountAsync(string name, string sql = "select count(*) from writes")
    {
        await using var connection = new NpgsqlConnection(Direct(name));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>The tail of every manager's log, for failure messages.</summary>
    public string Logs()
    {
        var layout = LocalLayout.Load(Dir);
        if (layout is null)
        {
            return string.Empty;
        }

        return string.Join('\n', layout.Members.Select(m =>
        {
            var file = layout.LogFile(m);
            var lines = File.Exists(file) ? File.ReadLines(file).Where(l => !l.Contains("\"postgres: ", StringComparison.Ordinal) || l.Contains("FATAL", StringComparison.Ordinal) || l.Contains("ERROR", StringComparison.Ordinal)).TakeLast(25) : [];
            return $"--- {m.Name}\n" + Clipped(lines);
        })) + (new LocalCompute(layout).LogTail(25) is { Count: > 0 } compute ? "\n--- compute\n" + Clipped(compute) : string.Empty);
    }

    private static string Clipped(IEnumerable<string> lines) => string.Join('\n', lines.Select(l => l.Length > 400 ? l[..400] : l));

    public async ValueTask DisposeAsync()
    {
        // As the end-to-end suite: MEMORYCLUSTER_E2E_LOGS=DIR keeps every manager's log of every run.
        if (Environment.GetEnvironmentVariable("MEMORYCLUSTER_E2E_LOGS") is { Length: > 0 } keep && LocalLayout.Load(Dir) is { } layout)
        {
            var into = Directory.CreateDirectory(Path.Combine(keep, Path.GetFileName(Dir))).FullName;
            foreach (var member in layout.Members.Where(m => File.Exists(layout.LogFile(m))))
            {
                File.Copy(layout.LogFile(member), Path.Combine(into, member.Name + ".log"), overwrite: true);
            }
        }

        var (code, stdout, stderr) = Tests.Cli.Run("local", "down", "--dir", Dir, "--purge");
        if (code != 0 && Directory.Exists(Dir))
        {
            Directory.Delete(Dir, recursive: true);
        }

        await Task.CompletedTask;
        _ = stdout + stderr;
    }
}
