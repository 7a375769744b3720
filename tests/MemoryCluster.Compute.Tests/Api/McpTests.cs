using System.Text.Json;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace MemoryCluster.Compute.Tests.Api;

/// <summary>The MCP tools, called with the official SDK's client over HTTP and over stdio.</summary>
[Trait("Category", "Integration")]
public sealed class McpTests(PostgresFixture postgres) : IClassFixture<PostgresFixture>
{
    private static readonly string[] Tools =
        ["fusion_search", "identity_component", "neighbors", "paths", "supersede_triple", "traverse", "vector_search", "write_embeddings", "write_triples"];

    [Fact]
    public async Task Every_tool_answers_over_HTTP_and_writes_need_the_token()
    {
        await using var service = await RunningService.StartAsync(await postgres.NewDatabaseAsync());
        await using var client = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(service.Address, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = $"Bearer {RunningService.Token}" },
        }));
        Assert.Equal(Tools, (await client.ListToolsAsync()).Select(t => t.Name).Order(StringComparer.Ordinal));
        await CallEveryToolAsync(client);

        await using var anonymous = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions { Endpoint = new Uri(service.Address, "/mcp"), TransportMode = HttpTransportMode.StreamableHttp }));
        var refused = await anonymous.CallToolAsync("write_triples", new Dictionary<string, object?> { ["triples"] = new[] { new { subject = "x", predicate = "p", @object = "y" } } });
        Assert.True(refused.IsError is true);
        Assert.Contains("bearer token", Text(refused), StringComparison.Ordinal);
        Assert.True((await anonymous.CallToolAsync("neighbors", new Dictionary<string, object?> { ["entity"] = "alice" })).IsError is null or false);
    }

    [Fact]
    public async Task The_tools_answer_over_stdio_from_memorycluster_compute()
    {
        var database = await postgres.NewDatabaseAsync();
        await using var client = await McpClient.CreateAsync(new StdioClientTransport(new StdioClientTransportOptions
        {
            Command = "dotnet",
            Arguments = [Path.Combine(AppContext.BaseDirectory, "memorycluster.dll"), "compute", "--stdio", "--rw", database, "--token", RunningService.Token, "--host", "127.0.0.1", "--port", "0"],
            Name = "memorycluster-compute",
            ShutdownTimeout = TimeSpan.FromSeconds(10),
        }));
        await CallEveryToolAsync(client);
    }

    private static async Task CallEveryToolAsync(McpClient client)
    {
        var written = await Call(client, "write_triples", new()
        {
            ["triples"] = new object[]
            {
                new { subject = "alice", predicate = "worksAt", @object = "acme" },
                new { subject = "alice", predicate = "sameAs", @object = "al" },
            },
        });
        var first = written.GetProperty("ids")[0].GetInt64();
        // The answer comes once this process shows the write: the next read sees it.
        Assert.True(written.GetProperty("visible").GetBoolean());
        await Call(client, "supersede_triple", new() { ["id"] = first, ["subject"] = "alice", ["predicate"] = "worksAt", ["object"] = "globex" });
        await Call(client, "write_embeddings", new() { ["model"] = "m", ["embeddings"] = new[] { new { entity = "alice", vector = new[] { 1f, 0f } }, new { entity = "acme", vector = new[] { 0f, 1f } } } });
        var neighbors = await Call(client, "neighbors", new() { ["entity"] = "alice", ["direction"] = "out" });
        Assert.Equal(["al", "globex"], neighbors.GetProperty("neighbors").EnumerateArray().Select(n => n.GetProperty("entity").GetString()).Order(StringComparer.Ordinal));
        Assert.Equal(2, (await Call(client, "traverse", new() { ["start"] = "alice", ["hops"] = 1, ["direction"] = "out" })).GetProperty("reached").GetArrayLength() - 1);
        Assert.True((await Call(client, "paths", new() { ["from"] = "alice", ["to"] = "globex" })).GetProperty("found").GetBoolean());
        Assert.Equal(2, (await Call(client, "identity_component", new() { ["entity"] = "al" })).GetProperty("size").GetInt32());
        Assert.Equal("alice", (await Call(client, "vector_search", new() { ["model"] = "m", ["vector"] = new[] { 1f, 0f }, ["k"] = 1 })).GetProperty("hits")[0].GetProperty("entity").GetString());
        Assert.NotEmpty((await Call(client, "fusion_search", new() { ["model"] = "m", ["vector"] = new[] { 1f, 0f } })).GetProperty("hits").EnumerateArray());

        var bad = await client.CallToolAsync("vector_search", new Dictionary<string, object?> { ["model"] = "m", ["vector"] = new[] { 1f, 0f, 0f } });
        Assert.True(bad.IsError is true);
        Assert.Contains("vector has 3 dimensions; the model has 2", Text(bad), StringComparison.Ordinal);
    }

    private static async Task<JsonElement> Call(McpClient client, string tool, Dictionary<string, object?> arguments)
    {
        var result = await client.CallToolAsync(tool, arguments);
        Assert.True(result.IsError is null or false, $"{tool}: {Text(result)}");
        return result.StructuredContent is { } structured ? structured : JsonDocument.Parse(Text(result)).RootElement.Clone();
    }

    private static string Text(CallToolResult result) => string.Join("\n", result.Content.OfType<TextContentBlock>().Select(t => t.Text));
}
