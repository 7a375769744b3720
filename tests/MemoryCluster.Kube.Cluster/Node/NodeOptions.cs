using System.Net;

namespace MemoryCluster.Kube.Cluster.Node;

/// <summary>Settings of the node agent.</summary>
public sealed record NodeOptions
{
    /// <summary>The node's name: pods bound to it are its to run, and it binds pods bound to no node.</summary>
    public required string NodeName { get; init; }

    /// <summary>Where pods' volumes, logs and scripts, and claims' folders, are kept.</summary>
    public required string StateDirectory { get; init; }

    /// <summary>Pod IPs are taken from here: loopback addresses, which need no set-up on Linux.</summary>
    public IPNetwork PodNetwork { get; init; } = IPNetwork.Parse("127.10.0.0/16");

    /// <summary>The node's own address (status.hostIP).</summary>
    public string HostIp { get; init; } = "127.0.0.1";

    /// <summary>Folders searched for commands before the system's (where the built CLI is).</summary>
    public IReadOnlyList<string> SearchPath { get; init; } = [];

    /// <summary>The API server as pods reach it (<c>KUBERNETES_SERVICE_HOST</c>, <c>_PORT</c>), and its CA (the ServiceAccount volume's ca.crt).</summary>
    public (string Host, int Port, string CaPem)? ApiServer { get; init; }

    public NodeTimings Timings { get; init; } = NodeTimings.Kubelet;
}
