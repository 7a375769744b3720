using System.Net;
using k8s.Models;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Kube.Tests.ApiServer;

/// <summary><c>GET pods/NAME/log</c> (kubectl logs) as the real server answers it, from the node's logs.</summary>
[Trait("Category", "Integration")]
public sealed class PodLogTests
{
    private static async Task<(Harness Harness, HttpClient Http)> StartAsync()
    {
        var logs = new Dictionary<string, string> { ["instance"] = "one\ntwo\nthree\n", ["sidecar"] = "side\n" };
        var harness = await Harness.StartAsync(new FakeApiServerOptions { PodLogs = (_, _, _, container) => logs.GetValueOrDefault(container) }, installCrd: false);
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "demo-0", NamespaceProperty = "default" },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "instance" }, new V1Container { Name = "sidecar" }, new V1Container { Name = "starting" }] },
        };
        await harness.Client.CreateAsync(ResourceTypes.Pod, pod, CancellationToken.None);
        return (harness, new HttpClient { BaseAddress = harness.Server.Url });
    }

    [Fact]
    public async Task A_containers_log_is_plain_text_and_tailLines_keeps_the_last_lines()
    {
        var (harness, http) = await StartAsync();
        await using var _ = harness;
        using var __ = http;
        using var all = await http.GetAsync(new Uri("api/v1/namespaces/default/pods/demo-0/log?container=instance", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, all.StatusCode);
        Assert.Equal("text/plain", all.Content.Headers.ContentType?.MediaType);
        Assert.Equal("one\ntwo\nthree\n", await all.Content.ReadAsStringAsync());
        Assert.Equal("two\nthree\n", await http.GetStringAsync(new Uri("api/v1/namespaces/default/pods/demo-0/log?container=instance&tailLines=2", UriKind.Relative)));
    }

    [Theory]
    [InlineData("", "a container name must be specified for pod demo-0, choose one of: [instance sidecar starting]")]
    [InlineData("?container=nope", "container nope is not valid for pod demo-0")]
    [InlineData("?container=starting", "container \"starting\" in pod \"demo-0\" is waiting to start: ContainerCreating")]
    [InlineData("?container=instance&previous=true", "previous terminated container \"instance\" in pod \"demo-0\" not found")]
    public async Task A_request_the_log_cannot_answer_is_a_400_that_says_why(string query, string message)
    {
        var (harness, http) = await StartAsync();
        await using var _ = harness;
        using var __ = http;
        using var response = await http.GetAsync(new Uri("api/v1/namespaces/default/pods/demo-0/log" + query, UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var status = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("Status", (string?)status["kind"]);
        Assert.Equal(message, (string?)status["message"]);
    }

    [Fact]
    public async Task The_log_of_a_pod_that_does_not_exist_is_a_404()
    {
        var (harness, http) = await StartAsync();
        await using var _ = harness;
        using var __ = http;
        using var response = await http.GetAsync(new Uri("api/v1/namespaces/default/pods/demo-9/log?container=instance", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
