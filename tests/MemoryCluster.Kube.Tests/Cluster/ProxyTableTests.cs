using k8s.Models;
using MemoryCluster.Kube.Cluster.Proxy;
using static MemoryCluster.Kube.Tests.Cluster.Objects;

namespace MemoryCluster.Kube.Tests.Cluster;

public class ProxyTableTests
{
    [Fact]
    public void Each_service_port_forwards_to_the_ready_endpoints_at_the_port_of_its_name()
    {
        var services = new[]
        {
            Service("demo-rw", "127.96.0.1", ("postgres", 5432), ("metrics", 9187)),
            Service("demo-hl", "None", ("postgres", 5432)),
            Service("pending", null, ("postgres", 5432)),
        };
        var slices = new[]
        {
            new V1EndpointSlice
            {
                Metadata = new V1ObjectMeta { Name = "demo-rw-a", NamespaceProperty = "default", Labels = Labels("kubernetes.io/service-name=demo-rw") },
                Ports = [new Discoveryv1EndpointPort { Name = "postgres", Port = 5433 }, new Discoveryv1EndpointPort { Name = "metrics", Port = 9188 }],
                Endpoints =
                [
                    new V1Endpoint { Addresses = ["127.10.0.2"], Conditions = new V1EndpointConditions { Ready = true } },
                    new V1Endpoint { Addresses = ["127.10.0.3"], Conditions = new V1EndpointConditions { Ready = false } },
                ],
            },
        };
        var rules = ProxyTable.Plan(services, slices);

        Assert.Equal(["127.96.0.1:5432 -> 127.10.0.2:5433", "127.96.0.1:9187 -> 127.10.0.2:9188"],
            rules.Select(r => $"{r.Address}:{r.Port} -> {string.Join(",", r.Backends)}"));
    }

    private static V1Service Service(string name, string? ip, params (string Name, int Port)[] ports) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1ServiceSpec { ClusterIP = ip, Ports = [.. ports.Select(p => new V1ServicePort { Name = p.Name, Port = p.Port })] },
    };
}
