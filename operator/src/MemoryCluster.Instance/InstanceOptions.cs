using System.Globalization;
using System.Text.RegularExpressions;
using MemoryCluster.Api;

namespace MemoryCluster.Instance;

/// <summary>One member of the cluster, as every manager knows it from its configuration.</summary>
/// <param name="Id">Raft id, 1 or more, never reused.</param>
/// <param name="Name">Instance name: PostgreSQL's application_name and the replication slot on the primary.</param>
/// <param name="Host">Address the other members reach it at.</param>
/// <param name="PgPort">PostgreSQL's TCP port.</param>
/// <param name="RaftPort">The Raft transport's TCP port.</param>
/// <param name="HttpPort">The manager's HTTP API port.</param>
public sealed record Peer(ulong Id, string Name, string Host, int PgPort, int RaftPort, int HttpPort)
{
    public string RaftAddress => $"{Host}:{RaftPort}";

    public Uri HttpBase => new($"http://{Host}:{HttpPort}/");

    /// <summary>
    /// The member's address as the Raft membership holds it for a member added through the managers:
    /// <c>NAME@HOST:PGPORT:RAFTPORT:HTTPPORT</c>, everything the other managers need to know of it. (Founding members
    /// are held as <c>HOST:RAFTPORT</c>, as they always were; their other details come from the peers setting.)
    /// </summary>
    public string MemberAddress => $"{Name}@{Host}:{PgPort}:{RaftPort}:{HttpPort}";

    public override string ToString() => $"{Id}={MemberAddress}";

    /// <summary>
    /// The member <paramref name="id"/> whose Raft address is <paramref name="address"/>: read from the address when it is
    /// a <see cref="MemberAddress"/>, else the configured peer of that id whose Raft address it is; null when neither.
    /// </summary>
    public static Peer? FromMember(ulong id, string address, IEnumerable<Peer> configured)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(configured);
        if (address.Contains('@', StringComparison.Ordinal))
        {
            var parsed = InstanceOptionsParser.ParsePeers(string.Create(CultureInfo.InvariantCulture, $"{id}={address}"), []);
            return parsed.Count == 1 ? parsed[0] : null;
        }

        return configured.FirstOrDefault(p => p.Id == id && p.RaftAddress == address);
    }

    /// <summary>The Raft transport's <c>HOST:RAFTPORT</c> of a member address in either form.</summary>
    public static string TransportAddressOf(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var at = address.IndexOf('@', StringComparison.Ordinal);
        if (at < 0)
        {
            return address;
        }

        var parts = address[(at + 1)..].Split(':');
        return parts.Length >= 4 ? $"{string.Join(':', parts[..^3])}:{parts[^2]}" : address;
    }
}

/// <summary>Where the mounted TLS files are (the manager copies them before PostgreSQL reads them).</summary>
/// <param name="CertificateFile">The server certificate, PEM.</param>
/// <param name="KeyFile">Its private key, PEM.</param>
/// <param name="CaFile">The CA certificate that issued it and every peer's, PEM.</param>
public sealed record TlsFileSettings(string CertificateFile, string KeyFile, string CaFile);

/// <summary>Everything an instance manager needs to run; built only through <see cref="InstanceOptionsParser"/>.</summary>
public sealed record InstanceOptions
{
    public required ulong Id { get; init; }

    public required string DataRoot { get; init; }

    public string? PgBinDir { get; init; }

    public string? RunAsUser { get; init; }

    public required IReadOnlyList<Peer> Peers { get; init; }

    public required string ClusterKeyFile { get; init; }

    public required string ReplicationPasswordFile { get; init; }

    public string? AppPasswordFile { get; init; }

    /// <summary>
    /// The <c>postgres</c> role's password (setting <c>superuser-password-file</c>): set on every new primary, so an admin
    /// can connect over TCP with it. Null leaves the role without a password (it logs in only over the private socket).
    /// </summary>
    public string? SuperuserPasswordFile { get; init; }

    /// <summary>
    /// The user's postgresql.conf parameters (setting <c>parameters-file</c>, in a pod the ConfigMap's
    /// <c>postgresql.conf</c>): watched, checked and copied to <see cref="ParametersInForce"/>, which PostgreSQL includes
    /// before the manager's own settings. Null: no user parameters.
    /// </summary>
    public string? ParametersFile { get; init; }

    public string ReplicationMode { get; init; } = ReplicationModes.Async;

    /// <summary>A switchover is refused when the target is further behind than this.</summary>
    public long SwitchoverMaxLagBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>How long the old primary waits for the target to receive its final WAL before it gives up and resumes.</summary>
    public TimeSpan SwitchoverTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The primary lease; every other failover timing follows from it (<see cref="Node.LeaseTimings"/>).</summary>
    public TimeSpan PrimaryLease { get; init; } = Node.LeaseTimings.DefaultLease;

    public Node.LeaseTimings Lease => Node.LeaseTimings.For(PrimaryLease);

    /// <summary>
    /// How to start the watchdog process (program and leading arguments; <c>watchdog --data-dir ...</c> follow).
    /// Null runs no watchdog, and the manager says so in its log and status: fencing then relies on the manager alone.
    /// </summary>
    public IReadOnlyList<string>? WatchdogCommand { get; init; }

    /// <summary>The pod this manager runs in (setting <c>pod-name</c>), when it runs in Kubernetes.</summary>
    public string? PodName { get; init; }

    /// <summary>
    /// This member joins a running cluster: on its first start it founds nothing and waits until the members add it
    /// (<c>POST /members</c>); it never bootstraps a cluster of its own. Ignored once its Raft state holds anything.
    /// Set by the <c>join</c> setting, or by <c>founders</c> not naming this member.
    /// </summary>
    public bool Join { get; init; }

    /// <summary>
    /// The server certificate, its key and the CA that issued it (settings <c>tls-cert-file</c>, <c>tls-key-file</c>,
    /// <c>tls-ca-file</c>, all three or none): PostgreSQL serves TLS with them and replication verifies its upstream
    /// (<c>sslmode=verify-full</c>). Null: no TLS (the local cluster's default).
    /// </summary>
    public TlsFileSettings? Tls { get; init; }

    /// <summary>
    /// The one address the manager's HTTP API, its Raft transport and PostgreSQL listen on; null: every address (and
    /// PostgreSQL its peer host name). For pods that share one network namespace, where each binds its pod IP.
    /// </summary>
    public System.Net.IPAddress? ListenAddress { get; init; }

    /// <summary>The host part of a listening URL or address: the listen address when set (IPv6 in brackets), else the peer host.</summary>
    public string ListenHost => ListenAddress is { } ip
        ? ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString()
        : Self.Host;

    /// <summary>
    /// The ids of the members that founded the cluster (setting <c>founders</c>), when given: one config serves pods
    /// that founded it and pods added later by a scale, which join. Null: every peer is a founding member.
    /// </summary>
    public IReadOnlyList<ulong>? Founders { get; init; }

    /// <summary>The members a first start founds the cluster with: the founders among the peers (every peer when no founders are given).</summary>
    public IReadOnlyList<Peer> FoundingPeers => Founders is { } founders ? [.. Peers.Where(p => founders.Contains(p.Id))] : Peers;

    public Peer Self => Peers.Single(p => p.Id == Id);

    public string Name => Self.Name;

    public string DataDirectory => Path.Combine(DataRoot, "pgdata");

    public string SocketDirectory => Path.Combine(DataRoot, "run");

    public string RaftDirectory => Path.Combine(DataRoot, "raft");

    public string PassFile => Path.Combine(DataRoot, "replication.pass");

    /// <summary>Private copies of the TLS files, owned by PostgreSQL's user (the key 0600), outside PGDATA.</summary>
    public string TlsDirectory => Path.Combine(DataRoot, "tls");
    /// <summary>The folder of the user's parameters as the manager checked them (owned by PostgreSQL's user).</summary>
    public string ParametersDirectory => Path.Combine(DataRoot, "parameters");

    /// <summary>The checked copy of the user's parameters that postgresql.conf includes (outside PGDATA: pg_rewind and pg_basebackup never touch it).</summary>
    public string ParametersInForce => Path.Combine(ParametersDirectory, "in-force.conf");

    public bool Quorum => ReplicationMode == ReplicationModes.Quorum;
}

/// <summary>
/// Builds <see cref="InstanceOptions"/> from key/value settings (flags, environment and a file merged by the
/// caller, flags winning). Every problem is reported at once, each naming the key and why.
/// </summary>
public static partial class InstanceOptionsParser
{
    /// <summary>The keys, as flags without the leading dashes; the environment uses MEMORYCLUSTER_ + upper case with '_'.</summary>
    public static IReadOnlyList<string> Keys { get; } =
    [
        "id", "data-dir", "pg-bin-dir", "run-as", "peers", "cluster-key-file", "replication-password-file",
        "app-password-file", "superuser-password-file", "parameters-file", "mode", "switchover-max-lag-bytes", "switchover-timeout-seconds",
        "primary-lease-ms", "pod-name", "join", "founders", "tls-cert-file", "tls-key-file", "tls-ca-file", "listen-address",
    ];

    public static string EnvironmentName(string key) => "MEMORYCLUSTER_" + key.ToUpperInvariant().Replace('-', '_');

    /// <summary>Reads a settings file: one <c>key = value</c> per line; '#' starts a comment.</summary>
    public static IReadOnlyDictionary<string, string> ReadFile(string text, out IReadOnlyList<string> errors)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var problems = new List<string>();
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                problems.Add($"line {number}: expected 'key = value'");
                continue;
            }

            values[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }

        errors = problems;
        return values;
    }

    public static (InstanceOptions? Options, IReadOnlyList<string> Errors) Parse(IReadOnlyDictionary<string, string> values)
    {
        var errors = new List<string>();
        foreach (var key in values.Keys.Where(k => !Keys.Contains(k)).Order(StringComparer.Ordinal))
        {
            errors.Add($"{key}: unknown setting (known: {string.Join(", ", Keys)})");
        }

        string? Get(string key) => values.TryGetValue(key, out var v) && v.Length > 0 ? v : null;
        string Required(string key)
        {
            var value = Get(key);
            if (value is null)
            {
                errors.Add($"{key}: required (flag --{key} or {EnvironmentName(key)})");
            }

            return value ?? string.Empty;
        }

        long Number(string key, long fallback, long min, long max)
        {
            var text = Get(key);
            if (text is null)
            {
                return fallback;
            }

            if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
            {
                errors.Add($"{key}: must be a whole number from {min} to {max}, not '{text}'");
                return fallback;
            }

            return n;
        }

        var id = (ulong)Number("id", 0, 1, 1_000_000);
        var podName = Get("pod-name");
        if (Get("id") is null && podName is null)
        {
            errors.Add($"id: required (flag --id or {EnvironmentName("id")}; in a pod, --pod-name names the member instead)");
        }
        else if (Get("id") is not null && podName is not null)
        {
            errors.Add("pod-name: give either id or pod-name, not both");
        }

        var dataDir = Required("data-dir");
        var peersText = Required("peers");
        var keyFile = Required("cluster-key-file");
        var passwordFile = Required("replication-password-file");
        var mode = Get("mode") ?? ReplicationModes.Async;
        if (mode is not (ReplicationModes.Async or ReplicationModes.Quorum))
        {
            errors.Add($"mode: must be async or quorum, not '{mode}'");
        }

        var peers = ParsePeers(peersText, errors);
        var founders = ParseFounders(Get("founders"), errors);
        if (peers.Count > 0)
        {
            if (founders is null && peers.Count is not (3 or 5))
            {
                errors.Add($"peers: must list 3 or 5 members (2-node clusters cannot hold a safe majority), not {peers.Count}");
            }
            else if (founders is not null && peers.Count is < 3 or > 5)
            {
                // With founders given, peers also lists members added by a scale (4 while one is added or removed).
                errors.Add($"peers: must list 3 to 5 members, not {peers.Count}");
            }

            if (podName is not null && Get("id") is null)
            {
                // In a pod the member is the peer named like the pod (the StatefulSet's ordinal names): one config for all.
                var self = peers.FirstOrDefault(p => p.Name == podName);
                if (self is null)
                {
                    errors.Add($"pod-name: '{podName}' is not among the peers ({string.Join(", ", peers.Select(p => p.Name))})");
                }
                else
                {
                    id = self.Id;
                }
            }

            if (id != 0 && peers.All(p => p.Id != id))
            {
                errors.Add($"id: {id} is not among the peers ({string.Join(", ", peers.Select(p => p.Id))})");
            }

            foreach (var duplicate in peers.GroupBy(p => p.Id).Where(g => g.Count() > 1))
            {
                errors.Add($"peers: id {duplicate.Key} appears twice");
            }

            foreach (var duplicate in peers.GroupBy(p => p.Name).Where(g => g.Count() > 1))
            {
                errors.Add($"peers: name '{duplicate.Key}' appears twice");
            }

            foreach (var clash in peers.SelectMany(p => new[] { (p.Host, p.PgPort), (p.Host, p.RaftPort), (p.Host, p.HttpPort) })
                .GroupBy(e => e).Where(g => g.Count() > 1))
            {
                errors.Add($"peers: {clash.Key.Host}:{clash.Key.Item2} is used twice");
            }
        }

        string[] tlsKeys = ["tls-cert-file", "tls-key-file", "tls-ca-file"];
        var tlsGiven = tlsKeys.Where(k => Get(k) is not null).ToList();
        if (tlsGiven.Count is > 0 and < 3)
        {
            errors.Add($"{tlsKeys.Except(tlsGiven).First()}: required with {string.Join(" and ", tlsGiven)} (give the certificate, key and CA files, or none)");
        }

        var tls = tlsGiven.Count == 3 ? new TlsFileSettings(Get("tls-cert-file")!, Get("tls-key-file")!, Get("tls-ca-file")!) : null;
        var files = new[]
        {
            ("cluster-key-file", keyFile), ("replication-password-file", passwordFile), ("app-password-file", Get("app-password-file") ?? string.Empty),
            ("superuser-password-file", Get("superuser-password-file") ?? string.Empty), ("parameters-file", Get("parameters-file") ?? string.Empty),
        }.Concat(tlsKeys.Select(k => (k, Get(k) ?? string.Empty)));
        foreach (var (key, path) in files)
        {
            if (path.Length > 0 && !Path.IsPathFullyQualified(path))
            {
                errors.Add($"{key}: must be an absolute path, not '{path}'");
            }
            else if (path.Length > 0 && !File.Exists(path))
            {
                errors.Add($"{key}: no file at {path}");
            }
        }

        if (Get("superuser-password-file") is { } superuserFile && File.Exists(superuserFile) && File.ReadAllText(superuserFile).Trim().Length == 0)
        {
            errors.Add($"superuser-password-file: {superuserFile} is empty; the postgres role's password cannot be empty");
        }

        if (Get("parameters-file") is { } parametersFile && dataDir.Length > 0 && Path.IsPathFullyQualified(parametersFile)
            && Path.IsPathFullyQualified(dataDir) && Path.GetFullPath(parametersFile).StartsWith(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataDir)) + "/", StringComparison.Ordinal))
        {
            errors.Add($"parameters-file: {parametersFile} is inside data-dir, where the manager keeps its own copy; give the file's own place (in a pod, the mounted ConfigMap)");
        }

        if (keyFile.Length > 0 && File.Exists(keyFile) && File.ReadAllBytes(keyFile).Length < 32)
        {
            errors.Add($"cluster-key-file: {keyFile} must hold at least 32 bytes");
        }

        if (dataDir.Length > 0 && !Path.IsPathFullyQualified(dataDir))
        {
            errors.Add($"data-dir: must be an absolute path, not '{dataDir}'");
        }

        var join = Get("join") switch
        {
            null or "false" => false,
            "true" => true,
            var other => Invalid($"join: must be true or false, not '{other}'"),
        };
        bool Invalid(string problem)
        {
            errors.Add(problem);
            return false;
        }

        System.Net.IPAddress? listen = null;
        if (Get("listen-address") is { } listenText && !System.Net.IPAddress.TryParse(listenText, out listen))
        {
            errors.Add($"listen-address: '{listenText}' is not an IP address");
        }

        var maxLag = Number("switchover-max-lag-bytes", 16 * 1024 * 1024, 0, long.MaxValue);
        var timeout = Number("switchover-timeout-seconds", 30, 1, 3600);
        var lease = Number("primary-lease-ms", (long)Node.LeaseTimings.DefaultLease.TotalMilliseconds, (long)Node.LeaseTimings.MinimumLease.TotalMilliseconds, 60_000);
        if (errors.Count > 0)
        {
            return (null, errors);
        }

        return (new InstanceOptions
        {
            Id = id,
            DataRoot = dataDir,
            PgBinDir = Get("pg-bin-dir"),
            RunAsUser = Get("run-as"),
            Peers = peers,
            ClusterKeyFile = keyFile,
            ReplicationPasswordFile = passwordFile,
            AppPasswordFile = Get("app-password-file"),
            SuperuserPasswordFile = Get("superuser-password-file"),
            ParametersFile = Get("parameters-file"),
            ReplicationMode = mode,
            SwitchoverMaxLagBytes = maxLag,
            SwitchoverTimeout = TimeSpan.FromSeconds(timeout),
            PrimaryLease = TimeSpan.FromMilliseconds(lease),
            PodName = podName,
            Join = join || (founders is not null && !founders.Contains(id)),
            Founders = founders,
            Tls = tls,
            ListenAddress = listen,
        }, errors);
    }

    /// <summary>
    /// The founders setting: 3 or 5 distinct member ids, comma-separated; null when not given. The ids need not all be
    /// among the peers (a founding member removed by a scale stays a founder).
    /// </summary>
    internal static List<ulong>? ParseFounders(string? text, List<string> errors)
    {
        if (text is null)
        {
            return null;
        }

        var ids = new List<ulong>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!ulong.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id is < 1 or > 1_000_000)
            {
                errors.Add($"founders: '{item}' is not a member id (1-1000000)");
                return null;
            }

            ids.Add(id);
        }

        if (ids.Distinct().Count() != ids.Count || ids.Count is not (3 or 5))
        {
            errors.Add($"founders: must name 3 or 5 distinct member ids (the members that founded the cluster), not '{text}'");
            return null;
        }

        return ids;
    }

    /// <summary>Peers as <c>ID=NAME@HOST:PGPORT:RAFTPORT:HTTPPORT</c>, comma-separated.</summary>
    internal static List<Peer> ParsePeers(string text, List<string> errors)
    {
        var peers = new List<Peer>();
        if (text.Length == 0)
        {
            return peers;
        }

        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var match = PeerPattern().Match(item);
            if (!match.Success)
            {
                errors.Add($"peers: '{item}' is not ID=NAME@HOST:PGPORT:RAFTPORT:HTTPPORT");
                continue;
            }

            var ports = new int[3];
            var ok = true;
            for (var i = 0; i < 3; i++)
            {
                if (!int.TryParse(match.Groups[4 + i].Value, NumberStyles.None, CultureInfo.InvariantCulture, out ports[i]) || ports[i] is < 1 or > 65535)
                {
                    errors.Add($"peers: '{item}' has port {match.Groups[4 + i].Value} outside 1-65535");
                    ok = false;
                }
            }

            if (ok)
            {
                peers.Add(new Peer(ulong.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), match.Groups[2].Value, match.Groups[3].Value, ports[0], ports[1], ports[2]));
            }
        }

        return peers;
    }

    [GeneratedRegex(@"^([1-9][0-9]{0,5})=([a-z][-a-z0-9]{0,62})@([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):([0-9]+):([0-9]+):([0-9]+)$")]
    private static partial Regex PeerPattern();
}
