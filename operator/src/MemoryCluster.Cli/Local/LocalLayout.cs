using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using MemoryCluster.Instance;

namespace MemoryCluster.Cli.Local;

/// <summary>One local cluster's folder: what it holds and where. Persisted as <c>cluster.json</c>, kept across down/up.</summary>
/// <param name="Directory">The cluster's folder.</param>
/// <param name="Mode">async or quorum.</param>
/// <param name="Members">The instances, with the addresses and ports they listen on.</param>
/// <param name="Network">The members' network namespaces (<c>local up --netns</c>); null when every member is on loopback.</param>
internal sealed record LocalLayout(string Directory, string Mode, IReadOnlyList<Peer> Members, LocalNetwork? Network = null)
{
    public const string Host = "127.0.0.1";

    public string ClusterFile => Path.Combine(Directory, "cluster.json");

    public string Secrets => Path.Combine(Directory, "secrets");

    public string ClusterKeyFile => Path.Combine(Secrets, "raft.key");

    public string ReplicationPasswordFile => Path.Combine(Secrets, "replication.password");

    public string AppPasswordFile => Path.Combine(Secrets, "app.password");

    /// <summary>A libpq password file for the application role, for psql, pgbench and Npgsql (PGPASSFILE).</summary>
    public string PgPassFile => Path.Combine(Secrets, "pgpass");

    public string InstanceDirectory(Peer member) => Path.Combine(Directory, member.Name);

    public string PidFile(Peer member) => Path.Combine(InstanceDirectory(member), "manager.pid");

    public string LogFile(Peer member) => Path.Combine(InstanceDirectory(member), "manager.log");

    public string PeersArgument => string.Join(',', Members.Select(m => m.ToString()));

    /// <summary>libpq multi-host URI over every instance; read-write finds the primary, prefer-standby a replica.</summary>
    public string ConnectionString(bool readOnly) =>
        $"postgresql://app@{string.Join(',', Members.Select(m => $"{m.Host}:{m.PgPort}"))}/app?target_session_attrs={(readOnly ? "prefer-standby" : "read-write")}&connect_timeout=2";

    public static LocalLayout? Load(string directory)
    {
        var file = Path.Combine(directory, "cluster.json");
        if (!File.Exists(file))
        {
            return null;
        }

        var stored = JsonSerializer.Deserialize<Stored>(File.ReadAllText(file), JsonOptions)
            ?? throw new InvalidDataException($"{file} is empty");
        return new LocalLayout(directory, stored.Mode, stored.Members, stored.Network);
    }

    /// <summary>
    /// A new layout: names mc-1..mc-N, ids 1..N, free loopback ports, fresh secrets. With a network, member N
    /// listens on its own address in the network's subnet instead of loopback.
    /// </summary>
    public static LocalLayout Create(string directory, int instances, string mode, LocalNetwork? network = null)
    {
        var ports = FreePorts(instances * 3);
        var members = Enumerable.Range(0, instances)
            .Select(i => new Peer(
                (ulong)(i + 1),
                $"mc-{i + 1}",
                network is null ? Host : LocalNetwork.MemberAddress(network.Octet, (ulong)(i + 1)),
                ports[3 * i],
                ports[(3 * i) + 1],
                ports[(3 * i) + 2]))
            .ToList();
        var layout = new LocalLayout(directory, mode, members, network);
        System.IO.Directory.CreateDirectory(layout.Secrets);
        File.SetUnixFileMode(layout.Secrets, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllBytes(layout.ClusterKeyFile, RandomNumberGenerator.GetBytes(32));
        var app = Password();
        File.WriteAllText(layout.ReplicationPasswordFile, Password());
        File.WriteAllText(layout.AppPasswordFile, app);
        File.WriteAllText(layout.PgPassFile, $"*:*:*:app:{app}\n");
        foreach (var file in new[] { layout.ClusterKeyFile, layout.ReplicationPasswordFile, layout.AppPasswordFile, layout.PgPassFile })
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.WriteAllText(layout.ClusterFile, JsonSerializer.Serialize(new Stored(mode, members, network), JsonOptions));
        return layout;
    }

    /// <summary>
    /// This layout with <paramref name="count"/> more members: the next ids (never one used before: ids are never
    /// reused), names mc-ID, free ports; saved to cluster.json.
    /// </summary>
    public LocalLayout Grow(int count, ulong firstId)
    {
        var ports = FreePorts(count * 3);
        var added = Enumerable.Range(0, count).Select(i =>
        {
            var id = firstId + (ulong)i;
            return new Peer(id, $"mc-{id}", Network is null ? Host : LocalNetwork.MemberAddress(Network.Octet, id), ports[3 * i], ports[(3 * i) + 1], ports[(3 * i) + 2]);
        });
        return (this with { Members = [.. Members, .. added] }).Save();
    }

    /// <summary>This layout with only <paramref name="members"/>; saved to cluster.json (the others' folders stay on disk).</summary>
    public LocalLayout Keep(IReadOnlyList<Peer> members) => (this with { Members = members }).Save();

    private LocalLayout Save()
    {
        File.WriteAllText(ClusterFile, JsonSerializer.Serialize(new Stored(Mode, Members, Network), JsonOptions));
        return this;
    }

    private static string Password() => Convert.ToHexString(RandomNumberGenerator.GetBytes(18)).ToLowerInvariant();

    /// <summary>
    /// Distinct free loopback ports outside the kernel's ephemeral range, every probe listener open until all are
    /// chosen. An ephemeral port (what binding port 0 gives) can be taken, between this probe and the manager's
    /// bind seconds later, by any process's outgoing connection or by another probe; a port below the range only by
    /// another chooser of the same kind.
    /// </summary>
    private static int[] FreePorts(int count)
    {
        var range = EphemeralRange();
        var listeners = new List<TcpListener>();
        try
        {
            foreach (var port in PortCandidates(range, Random.Shared).Take(4096))
            {
                if (listeners.Count == count)
                {
                    break;
                }

                var listener = new TcpListener(IPAddress.Loopback, port);
                try
                {
                    listener.Start();
                    listeners.Add(listener);
                }
                catch (SocketException)
                {
                    listener.Dispose();
                }
            }

            if (listeners.Count < count)
            {
                throw new IOException($"found {listeners.Count} free loopback ports outside {range.Low}-{range.High}, {count} needed");
            }

            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Stop();
                listener.Dispose();
            }
        }
    }

    /// <summary>The kernel's ephemeral ports (ip_local_port_range; Linux's default when unreadable).</summary>
    private static (int Low, int High) EphemeralRange()
    {
        const string RangeFile = "/proc/sys/net/ipv4/ip_local_port_range";
        var parts = File.Exists(RangeFile)
            ? File.ReadAllText(RangeFile).Split((char[])[' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries)
            : [];
        return parts.Length == 2 && int.TryParse(parts[0], System.Globalization.CultureInfo.InvariantCulture, out var low) && int.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out var high)
            ? (low, high)
            : (32768, 60999);
    }

    /// <summary>Ports to try, in random order without repeats: 10000-65535 outside <paramref name="ephemeral"/> (pure but for the draw).</summary>
    internal static IEnumerable<int> PortCandidates((int Low, int High) ephemeral, Random random)
    {
        var pool = Enumerable.Range(10000, 65536 - 10000).Where(p => p < ephemeral.Low || p > ephemeral.High).ToArray();
        for (var i = 0; i < pool.Length; i++)
        {
            var j = random.Next(i, pool.Length);
            (pool[i], pool[j]) = (pool[j], pool[i]);
            yield return pool[i];
        }
    }

    private sealed record Stored(string Mode, IReadOnlyList<Peer> Members, LocalNetwork? Network = null);

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { WriteIndented = true };
}
