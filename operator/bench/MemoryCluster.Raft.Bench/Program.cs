using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using MemoryCluster.Raft.Sim;

namespace MemoryCluster.Raft.Bench;

/// <summary>
/// Scenario benchmark on loopback: (1) election time after the leader is killed, with a 150-300 ms
/// election timeout; (2) commit latency of one small entry (the simulator's register) on 3 nodes with fsync. Prints figures;
/// asserts nothing. Usage: raft-bench [--elections N] [--commits N] [--dir PATH]
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var elections = 60;
        var commits = 500;
        var root = Path.Combine(AppContext.BaseDirectory, "raft-bench-data");
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--elections":
                    elections = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--commits":
                    commits = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--dir":
                    root = args[++i];
                    break;
                default:
                    Console.Error.WriteLine("usage: raft-bench [--elections N] [--commits N] [--dir PATH]");
                    return 2;
            }
        }

        root = Path.Combine(root, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        try
        {
            using var overall = new CancellationTokenSource(TimeSpan.FromMinutes(10));
            await using (var cluster = new BenchCluster(root, 3))
            {
                await cluster.StartAsync(overall.Token);
                var commitTimes = await MeasureCommitsAsync(cluster, commits, overall.Token);
                Report("commit", commitTimes, $"nodes=3 fsync=on dir={root}");
                var electionTimes = await MeasureElectionsAsync(cluster, elections, overall.Token);
                Report("election", electionTimes, "nodes=3 election_timeout=150-300ms heartbeat=30ms (leader killed; until a new leader is recognised by both survivors)");
            }

            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<List<double>> MeasureCommitsAsync(BenchCluster cluster, int count, CancellationToken ct)
    {
        var leader = await cluster.LeaderAsync(ct);
        for (var i = 0; i < 20; i++)
        {
            await leader.ProposeAsync(RegisterCommand.SetFlag(leader.State.Version, i % 2 == 0).Encode(), ct);
        }

        var times = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            var command = RegisterCommand.Set(leader.State.Version, leader.Id.Value).Encode();
            var started = Stopwatch.GetTimestamp();
            var result = await leader.ProposeAsync(command, ct);
            times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if (result.Outcome != ApplyOutcome.Applied)
            {
                throw new InvalidOperationException($"proposal {i} was not applied: {result.Outcome}");
            }
        }

        return times;
    }

    private static async Task<List<double>> MeasureElectionsAsync(BenchCluster cluster, int runs, CancellationToken ct)
    {
        var times = new List<double>(runs);
        for (var run = 0; run < runs; run++)
        {
            var old = await cluster.LeaderAsync(ct);

            // Let the cluster be in its steady state (a restarted node refuses votes for 150 ms).
            await Task.Delay(400, ct);
            var killed = old.Id;
            var started = Stopwatch.GetTimestamp();
            await cluster.KillAsync(killed);
            var next = await cluster.LeaderAsync(ct);
            times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if (next.Id == killed)
            {
                throw new InvalidOperationException("the killed node still leads");
            }

            await cluster.RestartAsync(killed, ct);
        }

        return times;
    }

    private static void Report(string name, List<double> samples, string details)
    {
        samples.Sort();
        double P(double q) => samples[Math.Min(samples.Count - 1, (int)Math.Ceiling(q * samples.Count) - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"raft-bench: {name} n={samples.Count} p50={P(0.50):F1}ms p99={P(0.99):F1}ms min={samples[0]:F1}ms max={samples[^1]:F1}ms {details}"));
    }
}

/// <summary>Three hosts on 127.0.0.1 with file storage (fsync) under one folder.</summary>
internal sealed class BenchCluster(string root, int size) : IAsyncDisposable
{
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly Dictionary<NodeId, RaftHost<RegisterState>> _hosts = [];
    private List<Member> _members = [];

    public async Task StartAsync(CancellationToken ct)
    {
        var transports = new Dictionary<NodeId, TcpRaftTransport>();
        for (ulong i = 1; i <= (ulong)size; i++)
        {
            transports[new NodeId(i)] = NewTransport(new NodeId(i), "127.0.0.1:0");
        }

        _members = transports.Select(t => new Member(t.Key, $"127.0.0.1:{t.Value.LocalEndPoint.Port}", true)).ToList();
        foreach (var (id, transport) in transports)
        {
            await StartHostAsync(id, transport, ct);
        }
    }

    private TcpRaftTransport NewTransport(NodeId id, string address) =>
        new(new TcpRaftTransportOptions { Id = id, ListenAddress = address, ClusterKey = _key });

    private async Task StartHostAsync(NodeId id, TcpRaftTransport transport, CancellationToken ct)
    {
        var host = new RaftHost<RegisterState>(
            new RaftHostOptions { Id = id, InitialMembers = _members, TickInterval = TimeSpan.FromMilliseconds(15), ElectionTicks = 10, HeartbeatTicks = 2 },
            new RegisterStateMachine(_members),
            new FileRaftStorage(new FileRaftStorageOptions { Directory = Path.Combine(root, id.ToString()) }),
            transport);
        _hosts[id] = host;
        await host.StartAsync(ct);
    }

    public async Task KillAsync(NodeId id)
    {
        if (_hosts.Remove(id, out var host))
        {
            await host.DisposeAsync();
        }
    }

    public Task RestartAsync(NodeId id, CancellationToken ct) =>
        StartHostAsync(id, NewTransport(id, _members.Single(m => m.Id == id).Address), ct);

    public async Task<RaftHost<RegisterState>> LeaderAsync(CancellationToken ct)
    {
        while (true)
        {
            var leader = _hosts.Values.FirstOrDefault(h => h.Status.Role == RaftRole.Leader);
            if (leader is not null && _hosts.Values.All(h => h.Status.Leader == leader.Id && h.Status.Term == leader.Status.Term))
            {
                return leader;
            }

            await Task.Delay(1, ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var host in _hosts.Values)
        {
            await host.DisposeAsync();
        }
    }
}
