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

            var used = _byPod.Values.ToHashSet(StringComparer.Ordinal);
            var bytes = network.BaseAddress.GetAddressBytes();
            var start = ((uint)bytes[0] << 24) | ((uint)bytes[1] << 16) | ((uint)bytes[2] << 8) | bytes[3];
            var size = 1u << (32 - network.PrefixLength);
            for (var i = 1u; i < size - 1; i++)
            {
                var n = start + i;
                var address = new IPAddress([(byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n]).ToString();
                if (!used.Contains(address))
                {
                    _byPod[podUid] = address;
                    return address;
                }
            }

            throw new InvalidOperationException($"no pod address is free in {network}");
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
