using System.Text;
using k8s.Models;

namespace MemoryCluster.Kube.Cluster.Node;

/// <summary>
/// Cluster DNS as a hosts file, for one pod: what CoreDNS would answer, written where the pod's processes read
/// names (its own <c>/etc/hosts</c>). The pod's own name; every Service with a cluster IP as
/// <c>NAME.NS.svc.cluster.local</c>, <c>NAME.NS.svc</c> and <c>NAME.NS</c> (and <c>NAME</c> in the pod's namespace,
/// which a resolver's search path would give); and every endpoint with a hostname under a headless Service as
/// <c>HOST.SERVICE.NS.svc[.cluster.local]</c>, as StatefulSet pods are found. A hosts file cannot list several
/// addresses for one name usefully, so a headless Service's own name is left out.
/// </summary>
public static class HostsFile
{
    public const string Domain = "cluster.local";

    public static string Render(V1Pod pod, IEnumerable<V1Service> services, IEnumerable<V1EndpointSlice> slices)
    {
        var ns = pod.Metadata.NamespaceProperty;
        var text = new StringBuilder();
        text.Append("# Kubernetes-managed hosts file (the one-machine Kubernetes of the tests).\n");
        text.Append("127.0.0.1\tlocalhost\n");
        text.Append("::1\tlocalhost ip6-localhost ip6-loopback\n");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (!string.IsNullOrEmpty(pod.Status?.PodIP))
        {
            // Its own name under its subdomain is known before any slice lists it (a process may bind to it at once).
            var host = pod.Spec.Hostname ?? pod.Metadata.Name;
            var own = string.IsNullOrEmpty(pod.Spec.Subdomain) ? [host] : Names($"{host}.{pod.Spec.Subdomain}", ns, ns).Append(host).ToList();
            seen.Add(own[0]);
            text.Append(pod.Status.PodIP).Append('\t').AppendJoin(' ', own).Append('\n');
        }

        foreach (var service in services.OrderBy(s => s.Metadata.NamespaceProperty, StringComparer.Ordinal).ThenBy(s => s.Metadata.Name, StringComparer.Ordinal))
        {
            var ip = service.Spec?.ClusterIP;
            if (string.IsNullOrEmpty(ip) || ip == "None")
            {
                continue;
            }

            text.Append(ip).Append('\t').AppendJoin(' ', Names(service.Metadata.Name, service.Metadata.NamespaceProperty, ns)).Append('\n');
        }

        var headless = services.Where(s => s.Spec?.ClusterIP == "None")
            .Select(s => (s.Metadata.NamespaceProperty, s.Metadata.Name)).ToHashSet();
        foreach (var slice in slices.OrderBy(s => s.Metadata.NamespaceProperty, StringComparer.Ordinal).ThenBy(s => s.Metadata.Name, StringComparer.Ordinal))
        {
            if (slice.Metadata.Labels?.TryGetValue(Controllers.EndpointSlicePlanner.ServiceNameLabel, out var service) != true
                || !headless.Contains((slice.Metadata.NamespaceProperty, service!)))
            {
                continue;
            }

            foreach (var endpoint in (slice.Endpoints ?? []).OrderBy(e => e.Hostname, StringComparer.Ordinal))
            {
                if (string.IsNullOrEmpty(endpoint.Hostname) || endpoint.Addresses is not { Count: > 0 })
                {
                    continue;
                }

                var names = Names($"{endpoint.Hostname}.{service}", slice.Metadata.NamespaceProperty, ns).ToList();
                if (seen.Add(names[0]))
                {
                    text.Append(endpoint.Addresses[0]).Append('\t').AppendJoin(' ', names).Append('\n');
                }
            }
        }

        return text.ToString();
    }

    private static IEnumerable<string> Names(string name, string ns, string podNamespace)
    {
        yield return $"{name}.{ns}.svc.{Domain}";
        yield return $"{name}.{ns}.svc";
        yield return $"{name}.{ns}";
        if (ns == podNamespace)
        {
            yield return name;
        }
    }
}
