using System.Net;
using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>
/// Cluster IPs for Services, as the real server allocates them: a Service without one (and not headless, not
/// ExternalName) gets the lowest free address of the network after the network's own; one asked for by the
/// client must be in the network and free.
/// </summary>
internal static class ServiceAddresses
{
    public static void Assign(JsonObject service, IPNetwork network, IEnumerable<string?> taken)
    {
        var spec = service["spec"] as JsonObject ?? [];
        service["spec"] = spec;
        if ((string?)spec["type"] == "ExternalName")
        {
            return;
        }

        var used = taken.Where(t => t is not null && t != "None").Select(t => t!).ToHashSet(StringComparer.Ordinal);
        var asked = (string?)spec["clusterIP"];
        if (asked == "None")
        {
            spec["clusterIPs"] = new JsonArray("None");
            return;
        }

        string address;
        if (!string.IsNullOrEmpty(asked))
        {
            if (!IPAddress.TryParse(asked, out var ip) || !network.Contains(ip))
            {
                throw ApiError.Invalid("Service", (string?)service["metadata"]?["name"] ?? "", "spec.clusterIP",
                    $"Invalid value: \"{asked}\": failed to allocate IP {asked}: the provided IP ({asked}) is not in the valid range. The range of valid IPs is {network}");
            }

            if (used.Contains(asked))
            {
                throw ApiError.Invalid("Service", (string?)service["metadata"]?["name"] ?? "", "spec.clusterIP",
                    $"Invalid value: \"{asked}\": failed to allocate IP {asked}: provided IP is already allocated");
            }

            address = asked;
        }
        else
        {
            address = AddressRange.LowestFree(network, used) ?? throw new ApiError(500, "InternalError", $"Internal error occurred: failed to allocate a serviceIP: range is full");
        }

        spec["clusterIP"] = address;
        spec["clusterIPs"] = new JsonArray(address);
    }

    /// <summary>An update that leaves the cluster IP out keeps it (it never changes while the Service exists).</summary>
    public static void Keep(JsonObject old, JsonObject next)
    {
        if (old["spec"]?["clusterIP"] is { } ip && next["spec"] is JsonObject spec && string.IsNullOrEmpty((string?)spec["clusterIP"]))
        {
            spec["clusterIP"] = ip.DeepClone();
            spec["clusterIPs"] = old["spec"]?["clusterIPs"]?.DeepClone();
        }
    }
}

/// <summary>Addresses handed out from a network: the double's cluster IPs, the one-machine node's pod IPs.</summary>
public static class AddressRange
{
    /// <summary>The lowest address of <paramref name="network"/> after its own that is not in <paramref name="used"/>; null when none is left.</summary>
    public static string? LowestFree(IPNetwork network, IReadOnlySet<string> used)
    {
        var bytes = network.BaseAddress.GetAddressBytes();
        var size = 1L << (32 - network.PrefixLength);
        var start = ((long)bytes[0] << 24) | ((long)bytes[1] << 16) | ((long)bytes[2] << 8) | bytes[3];
        for (var i = 1L; i < size - 1; i++)
        {
            var n = start + i;
            var candidate = new IPAddress([(byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n]).ToString();
            if (!used.Contains(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
