using System.Diagnostics;
using System.Globalization;
using k8s.Models;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Kube.Tests.Controller;

/// <summary>
/// Leader election between two operating-system processes (this assembly run as a program, see
/// <see cref="ElectorProgram"/>) against the API double: what two operator pods do.
/// </summary>
[Trait("Category", "Integration")]
public sealed class LeaderElectionProcessTests
{
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Exactly_one_process_leads_and_the_other_takes_over_after_the_leader_is_killed()
    {
        // Lease 5 s, renew deadline 4 s, retry 300 ms: short, with room for a loaded machine.
        var lease = TimeSpan.FromSeconds(5);
        await using var server = await FakeApiServer.StartAsync(null, CancellationToken.None);
        await using var processes = new ElectorProcesses(server.Url, lease, TimeSpan.FromSeconds(4), TimeSpan.FromMilliseconds(300));
        var one = processes.Start("one");
        var two = processes.Start("two");
        var leader = await processes.FirstLeaderAsync(StartBound);
        var follower = leader == one ? two : one;
        await follower.WaitForAsync("campaigning", StartBound);

        // More than a lease duration in which the follower campaigns while the leader renews: it must not lead.
        await Task.Delay(lease * 1.5);
        Assert.Null(follower.Find("leading"));
        Assert.Null(leader.Find("stopped"));
        var before = await LeaseAsync(server);
        Assert.Equal(leader.Identity, before.HolderIdentity);

        var killedAt = DateTimeOffset.UtcNow;
        leader.Kill();
        var takeover = await follower.WaitForAsync("leading", lease + TimeSpan.FromSeconds(60));

        // IMPORTANT: the follower may lead only once the leader is gone (it cannot release: it was killed).
        Assert.True(takeover.At > killedAt, $"{follower.Identity} led at {takeover.At:O}, before {leader.Identity} was killed at {killedAt:O}");
        var after = await LeaseAsync(server);
        Assert.Equal(follower.Identity, after.HolderIdentity);
        Assert.Equal((before.LeaseTransitions ?? 0) + 1, after.LeaseTransitions);
    }

    [Fact]
    public async Task A_leader_stopped_with_SIGTERM_stops_its_work_and_releases_the_lease_so_the_other_leads_at_once()
    {
        // A lease of 10 minutes: the only way the follower can lead within the test's bound is the release.
        await using var server = await FakeApiServer.StartAsync(null, CancellationToken.None);
        await using var processes = new ElectorProcesses(server.Url, TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(300));
        var one = processes.Start("one");
        var two = processes.Start("two");
        var leader = await processes.FirstLeaderAsync(StartBound);
        var follower = leader == one ? two : one;
        await follower.WaitForAsync("campaigning", StartBound);

        await leader.TerminateAsync();
        var stopped = await leader.WaitForAsync("stopped", TimeSpan.FromSeconds(60));
        var takeover = await follower.WaitForAsync("leading", TimeSpan.FromSeconds(60));
        Assert.Equal(0, await leader.ExitCodeAsync(TimeSpan.FromSeconds(60)));

        // IMPORTANT: the guarded work stopped before the lease was released, so before the other could start.
        Assert.True(stopped.At <= takeover.At, $"{leader.Identity} stopped at {stopped.At:O}, after {follower.Identity} led at {takeover.At:O}");
        var after = await LeaseAsync(server);
        Assert.Equal(follower.Identity, after.HolderIdentity);
        Assert.Equal(1, after.LeaseTransitions);
    }

    private static async Task<V1LeaseSpec> LeaseAsync(FakeApiServer server)
    {
        using var client = new Kube.Client.KubeApiClient(new Kube.Config.KubeClientSettings { Server = server.Url });
        var lease = await client.GetAsync(ResourceTypes.Lease, "default", "memorycluster-operator", CancellationToken.None);
        return lease.Spec!;
    }
}

/// <summary>One line an elector process printed: what happened, and when by the machine's clock.</summary>
internal sealed record ElectorLine(string What, DateTimeOffset At);

/// <summary>Elector processes, all killed on dispose, so none outlives its test even when the test fails.</summary>
internal sealed class ElectorProcesses(Uri server, TimeSpan lease, TimeSpan renewDeadline, TimeSpan retry) : IAsyncDisposable
{
    private readonly List<ElectorProcess> _started = [];

    public ElectorProcess Start(string identity)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            "exec", typeof(ElectorProgram).Assembly.Location, "elector", server.ToString(), identity,
            Milliseconds(lease), Milliseconds(renewDeadline), Milliseconds(retry),
        })
        {
            start.ArgumentList.Add(arg);
        }

        var process = new ElectorProcess(identity, Process.Start(start) ?? throw new InvalidOperationException("could not start an elector"));
        _started.Add(process);
        return process;
    }

    /// <summary>The first process to print <c>leading</c>.</summary>
    public async Task<ElectorProcess> FirstLeaderAsync(TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        while (true)
        {
            var leaders = _started.Where(p => p.Find("leading") is not null).ToList();
            if (leaders.Count > 0)
            {
                Assert.Single(leaders);
                return leaders[0];
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"no elector led within {bound}:\n{string.Join("\n", _started.Select(p => p.Transcript()))}");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _started)
        {
            await process.DisposeAsync();
        }
    }

    private static string Milliseconds(TimeSpan t) => ((long)t.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);

    private static string DotnetHost()
    {
        // The test host runs under the dotnet muxer; fall back to the one the SDK names, then to PATH.
        var current = Environment.ProcessPath;
        if (current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet")
        {
            return current;
        }

        return Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
    }
}

/// <summary>One elector process and the lines it printed.</summary>
internal sealed class ElectorProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<ElectorLine> _lines = [];
    private readonly List<string> _errors = [];

    public ElectorProcess(string identity, Process process)
    {
        Identity = identity;
        _process = process;
        _process.OutputDataReceived += (_, e) => Record(e.Data);
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_errors)
                {
                    _errors.Add(e.Data);
                }
            }
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Identity { get; }

    public ElectorLine? Find(string what)
    {
        lock (_lines)
        {
            return _lines.FirstOrDefault(l => l.What == what);
        }
    }

    public async Task<ElectorLine> WaitForAsync(string what, TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        while (true)
        {
            if (Find(what) is { } line)
            {
                return line;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"{Identity} did not print '{what}' within {bound}:\n{Transcript()}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>SIGKILL: no chance to release the lease.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>SIGTERM, what the kubelet sends a pod it stops.</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }

    public async Task<int> ExitCodeAsync(TimeSpan bound)
    {
        await _process.WaitForExitAsync().WaitAsync(bound);
        return _process.ExitCode;
    }

    public string Transcript()
    {
        lock (_lines)
        {
            lock (_errors)
            {
                return $"[{Identity}] " + string.Join("; ", _lines.Select(l => l.What + " " + l.At.ToString("O", CultureInfo.InvariantCulture)))
                    + (_errors.Count > 0 ? " | stderr: " + string.Join(" / ", _errors) : "");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (InvalidOperationException)
        {
            // It had already exited.
        }
        finally
        {
            _process.Dispose();
        }
    }

    private void Record(string? line)
    {
        if (line?.Split(' ') is not [var what, _, var at])
        {
            return;
        }

        lock (_lines)
        {
            _lines.Add(new ElectorLine(what, DateTimeOffset.Parse(at, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind)));
        }
    }
}
