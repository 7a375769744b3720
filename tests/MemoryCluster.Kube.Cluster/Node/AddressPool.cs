using System.Net;

namespace MemoryCluster.Kube.Cluster.Node;

/// <summary>Pod IPs: the lowest free address of the network (after the network's own) for each pod, freed when it goes.</summary>
public sealed class AddressPool(IPNetwork network)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, string> _byPod = new(StringComparer.Ordinal);

    /// <summary>The pod's address: the one it has, else the lowest free one.</summary>
    public string Take(string podUid)
    {
        lock (_lock)
        {
            if (_byPod.TryGetValue(podUid, out var held))
            {
                return held;
            }

            var address = TestServer.AddressRange.LowestFree(network, _byPod.Values.ToHashSet(StringComparer.Ordinal))
                ?? throw new InvalidOperationException($"no pod address is free in {network}");
            _byPod[podUid] = address;
            return address;
        }
    }

    public void Free(string podUid)
    {
        lock (_lock)
        {
            _byPod.Remove(podUid);
        }
    }
}
