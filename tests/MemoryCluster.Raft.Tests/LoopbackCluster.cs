using System.Security.Cryptography;
using MemoryCluster.Raft.Sim;

namespace MemoryCluster.Raft.Tests;

/// <summary>Real hosts on 127.0.0.1 with file storage in a temp folder that is deleted on dispose.</summary>
internal sealed class LoopbackCluster : IAsyncDisposable
{
    private readonly Dictionary<NodeId, string> _addresses = [];
    private readonly Dictionary<NodeId, TcpRaftTransport> _reserved = [];

    public LoopbackCluster()
    {
        Directory.CreateDirectory(Root);
    }

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "raft-loopback-" + Guid.NewGuid().ToString("N"));

    public byte[] Key { get; } = RandomNumberGenerator.GetBytes(32);

    public Dictionary<NodeId, RaftHost<RegisterState>> Hosts { get; } = [];

    public Dictionary<NodeId, TcpRaftTransport> Transports { get; } = [];

    public TimeSpan TickInterval { get; init; } = TimeSpan.FromMilliseconds(15);

    public IReadOnlyList<Member> Founders { get; private set; } = [];

    public string AddressOf(NodeId id) => _addresses[id];

    /// <summary>Binds a port for each id up front, so that addresses are known before any host starts.</summary>
    public void Reserve(params ulong[] ids)
    {
        foreach (var i in ids)
        {
            var id = new NodeId(i);
            var transport = NewTransport(id, "127.0.0.1:0", Key);
            _reserved[id] = transport;
            _addresses[id] = $"127.0.0.1:{transport.LocalEndPoint.Port}";
        }
    }

    public TcpRaftTransport NewTransport(NodeId id, string listen, byte[] key) =>
        new(new TcpRaftTransportOptions { Id = id, ListenAddress = listen, ClusterKey = key, Log = (level, w) => Warnings.Add($"{id}: {level}: {w}") });

    public System.Collections.Concurrent.ConcurrentBag<string> Warnings { get; } = [];

    /// <summary>What the hosts logged (role changes among them), stamped, for a failing test's message.</summary>
    public System.Collections.Concurrent.ConcurrentBag<string> Events { get; } = [];

    public async Task StartFoundersAsync(params ulong[] ids)
    {
        Reserve(ids);
        Founders = ids.Select(i => new Member(new NodeId(i), _addresses[new NodeId(i)], true)).ToList();
        foreach (var i in ids)
        {
            await StartAsync(new NodeId(i), Founders).ConfigureAwait(false);
        }
    }

    public async Task StartAsync(NodeId id, IReadOnlyList<Member> initialMembers)
    {
        if (!_reserved.Remove(id, out var transport))
        {
            transport = NewTransport(id, _addresses[id], Key);
        }

        var host = new RaftHost<RegisterState>(
            new RaftHostOptions
            {
                Id = id,
                InitialMembers = initialMembers,
                SeedPeers = _addresses.Where(a => a.Key != id).ToDictionary(a => a.Key, a => a.Value),
                TickInterval = TickInterval,
                SnapshotEvery = 20,
                Log = (level, w) => Events.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {id}: {level}: {w}"),
            },
            new RegisterStateMachine(initialMembers),
            new FileRaftStorage(new FileRaftStorageOptions { Directory = Path.Combine(Root, id.ToString()) }),
            transport);
        Hosts[id] = host;
        Transports[id] = transport;
        await host.StartAsync(CancellationToken.None).ConfigureAwait(false);
    }

    public Task RestartAsync(NodeId id) => StartAsync(id, Founders);

    public async Task StopAsync(NodeId id)
    {
        if (Hosts.Remove(id, out var host))
        {
            Transports.Remove(id);
            await host.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Polls until one host leads and every listed host agrees on it; bounded by the token.</summary>
    public async Task<RaftHost<RegisterState>> LeaderAsync(CancellationToken ct, IEnumerable<NodeId>? among = null)
    {
        while (true)
        {
            var hosts = (among ?? Hosts.Keys).Where(Hosts.ContainsKey).Select(id => Hosts[id]).ToList();
            var leader = hosts.FirstOrDefault(h => h.Status.Role == RaftRole.Leader);
            if (leader is not null && hosts.All(h => h.Status.Leader == leader.Id && h.Status.Term == leader.Status.Term))
            {
                return leader;
            }

            await Task.Delay(10, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Polls until a host leads and every running member of its configuration agrees (hosts that are not members yet are not asked).</summary>
    public async Task<RaftHost<RegisterState>> MembersLeaderAsync(CancellationToken ct)
    {
        while (true)
        {
            var leader = Hosts.Values.Where(h => h.Status.Role == RaftRole.Leader).MaxBy(h => h.Status.Term);
            if (leader is not null && leader.Status.Members.Where(m => Hosts.ContainsKey(m.Id)).All(m => Hosts[m.Id].Status.Leader == leader.Id && Hosts[m.Id].Status.Term == leader.Status.Term))
            {
                return leader;
            }

            await Task.Delay(10, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Retries a proposal through whoever leads (leadership may move under faults).</summary>
    public Task<ApplyResult<RegisterState>> ProposeAsync(Func<RegisterState, RegisterCommand> command, CancellationToken ct) =>
        OnLeaderAsync(leader => leader.ProposeAsync(command(leader.State).Encode(), ct), ct);

    /// <summary>
    /// Runs a membership change on whoever leads, again on the next leader when leadership moved before the change
    /// was proposed or while it was pending (a retried change already in effect is a no-op, so retrying is safe).
    /// </summary>
    public Task<RaftHost<RegisterState>> ChangeOnLeaderAsync(Func<RaftHost<RegisterState>, Task> change, CancellationToken ct) =>
        OnLeaderAsync(async leader =>
        {
            await change(leader).ConfigureAwait(false);
            return leader;
        }, ct);

    // Runs the action on the leader the running members agree on; on the next one when leadership moved meanwhile.
    private async Task<T> OnLeaderAsync<T>(Func<RaftHost<RegisterState>, Task<T>> action, CancellationToken ct)
    {
        while (true)
        {
            var leader = await MembersLeaderAsync(ct).ConfigureAwait(false);
            try
            {
                return await action(leader).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NotLeaderException or ProposalLostException)
            {
                Events.Add($"{DateTime.UtcNow:HH:mm:ss.fff} test: {leader.Id} no longer leads ({e.GetType().Name}), retrying on the next leader");
                await Task.Delay(20, ct).ConfigureAwait(false);
            }
        }
    }

    public static async Task EventuallyAsync(Func<bool> condition, CancellationToken ct)
    {
        while (!condition())
        {
            await Task.Delay(10, ct).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var host in Hosts.Values)
        {
            await host.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var t in _reserved.Values)
        {
            await t.DisposeAsync().ConfigureAwait(false);
        }

        Hosts.Clear();
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}
