using System.Net;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Kube.Tests.ApiServer;

/// <summary>What the double does for a node: tokens for a pod's ServiceAccount, and cluster IPs for Services.</summary>
public class TokenAndAddressTests
{
    [Fact]
    public async Task A_token_issued_for_a_service_account_is_that_account_under_rbac()
    {
        await using var harness = await Harness.StartAsync(new FakeApiServerOptions { Users = new Dictionary<string, RbacUser>() }, installCrd: false);
        var admin = harness.Client;
        await admin.CreateAsync(ResourceTypes.ServiceAccount, new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = "reader", NamespaceProperty = "default" } }, CancellationToken.None);
        await admin.CreateAsync(ResourceTypes.Role, Model<V1Role>(RbacObjects.Role("read-pods", "default", RbacObjects.Rule([""], ["pods"], ["get", "list"]))), CancellationToken.None);
        await admin.CreateAsync(ResourceTypes.RoleBinding,
            Model<V1RoleBinding>(RbacObjects.Binding("read-pods", "default", "Role", "read-pods", RbacObjects.Subject("ServiceAccount", "reader"))), CancellationToken.None);

        var token = await TokenAsync(harness, "reader");
        using var reader = new KubeApiClient(new KubeClientSettings { Server = harness.Server.Url, Credentials = new StaticCredentialProvider(new Credential(token, null, null)) });
        await reader.ListAsync(ResourceTypes.Pod, "default", null, CancellationToken.None);
        var refused = await Assert.ThrowsAsync<ForbiddenException>(() => reader.ListAsync(ResourceTypes.Secret, "default", null, CancellationToken.None));
        Assert.Contains("system:serviceaccount:default:reader", refused.Message, StringComparison.Ordinal);

        // No such account: no token.
        await Assert.ThrowsAsync<NotFoundException>(() => TokenAsync(harness, "nobody"));
    }

    [Fact]
    public async Task Services_get_the_lowest_free_cluster_ip_and_keep_it()
    {
        await using var harness = await Harness.StartAsync(new FakeApiServerOptions { ServiceNetwork = IPNetwork.Parse("127.96.0.0/24") }, installCrd: false);
        var client = harness.Client;
        var first = await client.CreateAsync(ResourceTypes.Service, Service("a"), CancellationToken.None);
        var second = await client.CreateAsync(ResourceTypes.Service, Service("b"), CancellationToken.None);
        var headless = await client.CreateAsync(ResourceTypes.Service, Service("c", "None"), CancellationToken.None);
        Assert.Equal(("127.96.0.1", "127.96.0.2", "None"), (first.Spec.ClusterIP, second.Spec.ClusterIP, headless.Spec.ClusterIP));

        // Applied again without the address, and replaced without it: kept.
        var applied = await client.ApplyAsync(ResourceTypes.Service, Service("a"), "test", force: true, null, CancellationToken.None);
        Assert.Equal("127.96.0.1", applied.Object.Spec.ClusterIP);
        var replaced = Service("a");
        replaced.Metadata.ResourceVersion = applied.Object.Metadata.ResourceVersion;
        Assert.Equal("127.96.0.1", (await client.ReplaceAsync(ResourceTypes.Service, replaced, CancellationToken.None)).Spec.ClusterIP);

        // A freed address is handed out again; one outside the network or taken is refused with the field.
        await client.DeleteAsync(ResourceTypes.Service, "default", "a", null, CancellationToken.None);
        Assert.Equal("127.96.0.1", (await client.CreateAsync(ResourceTypes.Service, Service("d"), CancellationToken.None)).Spec.ClusterIP);
        var outside = await Assert.ThrowsAsync<InvalidException>(() => client.CreateAsync(ResourceTypes.Service, Service("e", "10.0.0.1"), CancellationToken.None));
        Assert.Contains("spec.clusterIP", outside.Message, StringComparison.Ordinal);
        var taken = await Assert.ThrowsAsync<InvalidException>(() => client.CreateAsync(ResourceTypes.Service, Service("f", "127.96.0.2"), CancellationToken.None));
        Assert.Contains("already allocated", taken.Message, StringComparison.Ordinal);
    }

    private static async Task<string> TokenAsync(Harness harness, string account)
    {
        using var http = new HttpClient();
        var response = await http.PostAsync(new Uri(harness.Server.Url, $"api/v1/namespaces/default/serviceaccounts/{account}/token"),
            new StringContent("""{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":600}}""", System.Text.Encoding.UTF8, "application/json"));
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            throw new NotFoundException(new V1Status { Message = await response.Content.ReadAsStringAsync() });
        }

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("TokenRequest", (string?)body["kind"]);
        return (string)body["status"]!["token"]!;
    }

    private static T Model<T>(System.Text.Json.Nodes.JsonObject json) => k8s.KubernetesJson.Deserialize<T>(json.ToJsonString());

    private static V1Service Service(string name, string? clusterIp = null) => new()
    {
        ApiVersion = "v1",
        Kind = "Service",
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = new V1ServiceSpec { ClusterIP = clusterIp, Ports = [new V1ServicePort { Name = "p", Port = 5432 }] },
    };
}
