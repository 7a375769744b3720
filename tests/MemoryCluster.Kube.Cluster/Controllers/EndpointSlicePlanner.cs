using k8s.Models;

namespace MemoryCluster.Kube.Cluster.Controllers;

/// <summary>What the EndpointSlice controller does in one round for one Service.</summary>
public sealed record EndpointSlicePlan(IReadOnlyList<V1EndpointSlice> Create, IReadOnlyList<V1EndpointSlice> Update, IReadOnlyList<V1EndpointSlice> Delete);

/// <summary>
/// The EndpointSlice controller's decisions, as Kubernetes makes them: for a Service with a selector, every pod of its
/// namespace that matches and has an IP is an endpoint; the Service's ports are resolved on each pod (a named
/// <c>targetPort</c> by the container port of that name; a pod without it is left out), and pods resolving alike
/// share a slice. An endpoint is ready when its pod is Ready and not terminating, or always when the Service
/// publishes not-ready addresses; it carries the pod's hostname when the pod's subdomain is the Service. Slices are
/// labelled with the Service's name and owned by it; one whose ports no pod has any more is rewritten for other
/// ports or deleted.
/// </summary>
public static class EndpointSlicePlanner
{
    public const string ServiceNameLabel = "kubernetes.io/service-name";
    public const string ManagedByLabel = "endpointslice.kubernetes.io/managed-by";
    public const string Manager = "endpointslice-controller.k8s.io";

    /// <param name="service">The Service as read.</param>
    /// <param name="pods">The pods of its namespace.</param>
    /// <param name="existing">The slices this controller made for it before.</param>
    public static EndpointSlicePlan Plan(V1Service service, IReadOnlyCollection<V1Pod> pods, IReadOnlyCollection<V1EndpointSlice> existing)
    {
        // A wanted slice takes the existing one with the same ports, else one left over (rewritten in place, as the
        // real controller recycles slices, so the Service never shows none while its pods change), else a new one.
        var unused = existing.OrderBy(s => s.Metadata.Name, StringComparer.Ordinal).ToList();
        var wanted = Wanted(service, pods);
        var create = new List<V1EndpointSlice>();
        var update = new List<V1EndpointSlice>();
        foreach (var slice in wanted.Where(w => unused.Any(u => PortsKey(u.Ports) == PortsKey(w.Ports))).Concat(wanted.Where(w => unused.All(u => PortsKey(u.Ports) != PortsKey(w.Ports)))).ToList())
        {
            var old = unused.FirstOrDefault(u => PortsKey(u.Ports) == PortsKey(slice.Ports)) ?? unused.FirstOrDefault();
            if (old is null)
            {
                create.Add(slice);
                continue;
            }

            unused.Remove(old);
            if (!Same(old, slice))
            {
                var next = Workloads.Copy(old);
                next.Endpoints = slice.Endpoints;
                next.Ports = slice.Ports;
                next.Metadata.Labels = slice.Metadata.Labels;
                update.Add(next);
            }
        }

        return new EndpointSlicePlan(create, update, unused);
    }

    private static string PortsKey(IEnumerable<Discoveryv1EndpointPort>? ports) =>
        string.Join(",", (ports ?? []).Select(p => $"{p.Name}/{p.Protocol}/{p.Port}"));

    private static List<V1EndpointSlice> Wanted(V1Service service, IReadOnlyCollection<V1Pod> pods)
    {
        if (service.Spec?.Selector is not { Count: > 0 } selector)
        {
            return [];
        }

        var groups = new Dictionary<string, (List<Discoveryv1EndpointPort> Ports, List<V1Endpoint> Endpoints)>(StringComparer.Ordinal);
        foreach (var pod in pods.OrderBy(p => p.Metadata.Name, StringComparer.Ordinal))
        {
            if (pod.Metadata.NamespaceProperty != service.Metadata.NamespaceProperty || !Workloads.Matches(selector, pod.Metadata.Labels)
                || string.IsNullOrEmpty(pod.Status?.PodIP) || Workloads.HasEnded(pod))
            {
                continue;
            }

            var ports = ResolvePorts(service, pod);
            if (ports is null)
            {
                continue;
            }

            var key = PortsKey(ports);
            if (!groups.TryGetValue(key, out var group))
            {
                group = (ports, []);
                groups[key] = group;
            }

            var terminating = Workloads.IsTerminating(pod);
            var ready = Workloads.IsReady(pod);
            group.Endpoints.Add(new V1Endpoint
            {
                Addresses = [pod.Status!.PodIP],
                Conditions = new V1EndpointConditions
                {
                    Ready = service.Spec.PublishNotReadyAddresses == true || (ready && !terminating),
                    Serving = ready,
                    Terminating = terminating,
                },
                Hostname = !string.IsNullOrEmpty(pod.Spec?.Hostname) && pod.Spec.Subdomain == service.Metadata.Name ? pod.Spec.Hostname : null,
                NodeName = pod.Spec?.NodeName,
                TargetRef = new V1ObjectReference { Kind = "Pod", Name = pod.Metadata.Name, NamespaceProperty = pod.Metadata.NamespaceProperty, Uid = pod.Metadata.Uid },
            });
        }

        // A Service that selects no pod still has a slice (a placeholder, with no ports and no endpoints, as the real
        // controller makes), so clients can tell "no endpoints" from "not yet made".
        if (groups.Count == 0)
        {
            groups[""] = ([], []);
        }

        return [.. groups.Select(g => Slice(service, g.Key, g.Value.Ports, g.Value.Endpoints))];
    }

    /// <summary>The Service's ports on this pod, or null when a named target port is not among its containers'.</summary>
    private static List<Discoveryv1EndpointPort>? ResolvePorts(V1Service service, V1Pod pod)
    {
        var result = new List<Discoveryv1EndpointPort>();
        foreach (var port in service.Spec.Ports ?? [])
        {
            var protocol = port.Protocol ?? "TCP";
            var target = port.TargetPort?.Value;
            int number;
            if (string.IsNullOrEmpty(target))
            {
                number = port.Port;
            }
            else if (!int.TryParse(target, System.Globalization.CultureInfo.InvariantCulture, out number))
            {
                var named = pod.Spec?.Containers?.SelectMany(c => c.Ports ?? []).FirstOrDefault(c => c.Name == target && (c.Protocol ?? "TCP") == protocol);
                if (named is null)
                {
                    return null;
                }

                number = named.ContainerPort;
            }

            result.Add(new Discoveryv1EndpointPort { Name = port.Name, Port = number, Protocol = protocol });
        }

        return result;
    }

    private static V1EndpointSlice Slice(V1Service service, string portsKey, List<Discoveryv1EndpointPort> ports, List<V1Endpoint> endpoints)
    {
        var labels = new Dictionary<string, string>(service.Metadata.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [ServiceNameLabel] = service.Metadata.Name,
            [ManagedByLabel] = Manager,
        };
        var hash = Workloads.Hash(portsKey);
        var name = service.Metadata.Name[..Math.Min(service.Metadata.Name.Length, 62 - hash.Length)] + "-" + hash;
        return new V1EndpointSlice
        {
            ApiVersion = "discovery.k8s.io/v1",
            Kind = "EndpointSlice",
            Metadata = new V1ObjectMeta
            {
                Name = name,
                NamespaceProperty = service.Metadata.NamespaceProperty,
                Labels = labels,
                OwnerReferences = [Workloads.ControllerReference("v1", "Service", service.Metadata)],
            },
            AddressType = "IPv4",
            Ports = ports,
            Endpoints = endpoints,
        };
    }

    private static bool Same(V1EndpointSlice a, V1EndpointSlice b) =>
        k8s.KubernetesJson.Serialize(a.Endpoints ?? []) == k8s.KubernetesJson.Serialize(b.Endpoints ?? [])
        && k8s.KubernetesJson.Serialize(a.Ports ?? []) == k8s.KubernetesJson.Serialize(b.Ports ?? [])
        && Sorted(a.Metadata.Labels).SequenceEqual(Sorted(b.Metadata.Labels));

    private static IEnumerable<KeyValuePair<string, string>> Sorted(IDictionary<string, string>? labels) =>
        (labels ?? new Dictionary<string, string>()).OrderBy(l => l.Key, StringComparer.Ordinal);
}
