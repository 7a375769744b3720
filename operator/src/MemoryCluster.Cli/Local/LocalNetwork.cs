using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using MemoryCluster.Instance;

namespace MemoryCluster.Cli.Local;

/// <summary>
/// The network of a local cluster started with <c>--netns</c>: each member in a network namespace of its own,
/// joined by a veth pair to a bridge in the root namespace. The cluster owns the subnet 10.213.<see cref="Octet"/>.0/24:
/// the bridge is .1 (so the root namespace reaches every member), member N is .(10+N).
/// </summary>
/// <remarks>
/// SAFETY (../shared/POSTGRES-NOTES.md): the root namespace has a default route off the machine, and a packet for
/// a test address with no local route would leave it. So a blackhole route for the whole 10.213.0.0/16 is added
/// before anything else and kept while any cluster's bridge exists; the bridge's /24 is more specific and wins.
/// </remarks>
internal sealed partial record LocalNetwork(int Octet)
{
    public const string Blackhole = "10.213.0.0/16";

    private const string Prefix = "10.213.";

    public string Subnet => $"{Prefix}{Octet}.0/24";

    public string Bridge => $"mcbr{Octet}";

    public string BridgeAddress => $"{Prefix}{Octet}.1";

    public static string MemberAddress(int octet, ulong id) => string.Create(CultureInfo.InvariantCulture, $"{Prefix}{octet}.{10 + id}");

    public string Namespace(Peer member) => string.Create(CultureInfo.InvariantCulture, $"mc{Octet}-{member.Id}");

    /// <summary>The root-namespace end of the member's veth pair; the other end is <c>eth0</c> in its namespace.</summary>
    public string Veth(Peer member) => string.Create(CultureInfo.InvariantCulture, $"mcv{Octet}-{member.Id}");

    /// <summary>The lowest third octet no address or route of the root namespace uses yet.</summary>
    public static LocalNetwork ChooseFree()
    {
        var used = new HashSet<int>();
        foreach (Match match in UsedOctet().Matches(Ip("-o", "addr") + Ip("route")))
        {
            used.Add(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
        }

        for (var octet = 1; octet < 255; octet++)
        {
            if (!used.Contains(octet))
            {
                return new LocalNetwork(octet);
            }
        }

        throw new InvalidOperationException($"every /24 of {Blackhole} is in use");
    }

    /// <summary>Creates what is missing: blackhole route first, then bridge, namespaces, veth pairs, addresses. Idempotent.</summary>
    public void Ensure(IReadOnlyList<Peer> members)
    {
        if (!Ip("route", "show", "exact", Blackhole).Contains("blackhole", StringComparison.Ordinal))
        {
            Ip("route", "add", "blackhole", Blackhole);
        }

        var links = Ip("-o", "link");
        if (!links.Contains($": {Bridge}:", StringComparison.Ordinal))
        {
            var owner = Ip("-o", "addr");
            if (owner.Contains($" {BridgeAddress}/", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"{BridgeAddress} is already in use on this machine; {Subnet} belongs to another cluster");
            }

            Ip("link", "add", Bridge, "type", "bridge");
            Ip("addr", "add", $"{BridgeAddress}/24", "dev", Bridge);
        }

        Ip("link", "set", Bridge, "up");
        var namespaces = Ip("netns", "list");
        foreach (var member in members)
        {
            var ns = Namespace(member);
            if (!Regex.IsMatch(namespaces, $"^{Regex.Escape(ns)}( |$)", RegexOptions.Multiline))
            {
                Ip("netns", "add", ns);
            }

            if (!links.Contains($": {Veth(member)}@", StringComparison.Ordinal))
            {
                // A veth left behind by an earlier namespace of the same name would clash: drop it first.
                TryIp("-n", ns, "link", "del", "eth0");
                Ip("link", "add", Veth(member), "type", "veth", "peer", "name", "eth0", "netns", ns);
            }

            Ip("link", "set", Veth(member), "master", Bridge, "up");
            Ip("-n", ns, "link", "set", "lo", "up");
            if (!Ip("-n", ns, "-o", "addr", "show", "dev", "eth0").Contains($" {member.Host}/", StringComparison.Ordinal))
            {
                Ip("-n", ns, "addr", "add", $"{member.Host}/24", "dev", "eth0");
            }

            Ip("-n", ns, "link", "set", "eth0", "up");

            // Reconnecting after a healed partition takes ~7 s with the default SYN retries, ~0.2 s with 1.
            Run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.tcp_syn_retries=1");
        }
    }

    /// <summary>
    /// Removes namespaces, veth pairs and the bridge; then the blackhole route, unless another cluster's bridge
    /// still needs it. Missing pieces are fine (idempotent).
    /// </summary>
    public void Remove(IReadOnlyList<Peer> members)
    {
        foreach (var member in members)
        {
            // Deleting one end of a veth pair deletes both, even while a leftover process keeps the namespace alive.
            TryIp("link", "del", Veth(member));
            TryIp("netns", "del", Namespace(member));
        }

        TryIp("link", "del", Bridge);
        if (!OtherBridge().IsMatch(Ip("-o", "link")))
        {
            TryIp("route", "del", "blackhole", Blackhole);
        }
    }

    /// <summary>Cuts (or restores) a member's only link: its veth end in the root namespace goes down (or up).</summary>
    public void SetLink(Peer member, bool up) => Ip("link", "set", Veth(member), up ? "up" : "down");

    /// <summary>The command prefix that runs a member's manager inside its namespace.</summary>
    public string ExecPrefix(Peer member) => $"ip netns exec {Namespace(member)} ";

    private static string Ip(params string[] args) => Run("ip", args);

    private static void TryIp(params string[] args)
    {
        try
        {
            Run("ip", args);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static string Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            process.Kill();
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} did not finish in 30 s");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Trim()}");
        }

        return stdout.Result;
    }

    [GeneratedRegex(@"10\.213\.(\d{1,3})\.")]
    private static partial Regex UsedOctet();

    [GeneratedRegex(@": mcbr\d+:")]
    private static partial Regex OtherBridge();
}
