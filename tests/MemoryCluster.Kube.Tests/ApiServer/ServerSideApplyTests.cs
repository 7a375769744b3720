using System.Text.Json.Nodes;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Tests.ApiServer;

/// <summary>
/// Server-side apply on the lists our operator applies: entries of <c>x-kubernetes-list-type: map</c> lists are
/// owned one by one, so two field managers share a list without erasing each other's entries.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ServerSideApplyTests : IAsyncLifetime
{
    private const string Operator = "memorycluster-operator";
    private const string Injector = "sidecar-injector";
    private static readonly CancellationToken None = CancellationToken.None;
    private Harness _h = null!;

    public async Task InitializeAsync() => _h = await Harness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private static JsonObject StatefulSet(string containers) => JsonNode.Parse($$$$$"""
        {"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db","namespace":"default"},
         "spec":{"template":{"spec":{"containers":{{{{{containers}}}}}}}}}
        """)!.AsObject();

    private async Task<JsonObject> ApplyAsync(string manager, string containers, bool force = false) =>
        (await _h.Client.ApplyAsync(DynamicTypes.StatefulSet, StatefulSet(containers), manager, force, null, None)).Object;

    private static JsonArray Containers(JsonObject sts) => sts["spec"]!["template"]!["spec"]!["containers"]!.AsArray();

    private static JsonObject Container(JsonObject sts, string name) => Containers(sts).Single(c => (string?)c!["name"] == name)!.AsObject();

    private static List<string?> Names(JsonNode? list) => [.. (list?.AsArray() ?? []).Select(e => (string?)e!["name"])];

    private static List<int> Ports(JsonObject container) => [.. (container["ports"]?.AsArray() ?? []).Select(p => (int)p!["containerPort"]!)];

    [Fact]
    public async Task Two_managers_share_containers_env_and_ports_and_each_removes_only_the_entries_it_stops_applying()
    {
        await ApplyAsync(Operator, """
            [{"name":"postgres","image":"postgres:15","env":[{"name":"A","value":"1"}],"ports":[{"containerPort":5432,"protocol":"TCP"}]}]
            """);

        // Another manager adds a container, and an env entry and a port to ours: no conflict, nothing erased.
        var shared = await ApplyAsync(Injector, """
            [{"name":"proxy","image":"proxy:1"},
             {"name":"postgres","env":[{"name":"B","value":"2"}],"ports":[{"containerPort":9187,"protocol":"TCP"}]}]
            """);
        Assert.Equal(["postgres", "proxy"], Names(Containers(shared)).Order());
        var postgres = Container(shared, "postgres");
        Assert.Equal("postgres:15", (string?)postgres["image"]);
        Assert.Equal(["A", "B"], Names(postgres["env"]));
        Assert.Equal([5432, 9187], Ports(postgres).Order());

        // The managed fields name each entry, as FieldsV1 does.
        var injector = shared["metadata"]!["managedFields"]!.AsArray().Single(m => (string?)m!["manager"] == Injector)!;
        Assert.NotNull(injector["fieldsV1"]!["f:spec"]!["f:template"]!["f:spec"]!["f:containers"]!["k:{\"name\":\"proxy\"}"]!["."]);

        // The operator stops applying env A and changes its image: A goes, B and both ports stay.
        var next = await ApplyAsync(Operator, """
            [{"name":"postgres","image":"postgres:16","ports":[{"containerPort":5432,"protocol":"TCP"}]}]
            """);
        postgres = Container(next, "postgres");
        Assert.Equal("postgres:16", (string?)postgres["image"]);
        Assert.Equal(["B"], Names(postgres["env"]));
        Assert.Equal([5432, 9187], Ports(postgres).Order());
        Assert.Equal(["postgres", "proxy"], Names(Containers(next)).Order());

        // The operator stops applying the container: what it owned goes, the entry stays for the other manager's fields.
        var without = await ApplyAsync(Operator, "[]");
        postgres = Container(without, "postgres");
        Assert.Null(postgres["image"]);
        Assert.Equal(["B"], Names(postgres["env"]));
        Assert.Equal([9187], Ports(postgres));

        // When no manager applies it any more, the entry is gone.
        var last = await ApplyAsync(Injector, """[{"name":"proxy","image":"proxy:1"}]""");
        Assert.Equal(["proxy"], Names(Containers(last)));
    }

    [Fact]
    public async Task A_field_inside_an_entry_owned_by_another_manager_conflicts_unless_forced()
    {
        await ApplyAsync(Operator, """[{"name":"postgres","image":"postgres:15"}]""");
        var e = await Assert.ThrowsAsync<ConflictException>(() => ApplyAsync(Injector, """[{"name":"postgres","image":"evil:1"}]"""));
        Assert.Contains(e.Status.Details!.Causes!, c => c.Field!.Contains("image", StringComparison.Ordinal));
        var forced = await ApplyAsync(Injector, """[{"name":"postgres","image":"evil:1"}]""", force: true);
        Assert.Equal("evil:1", (string?)Container(forced, "postgres")["image"]);
    }

    [Fact]
    public async Task Status_conditions_applied_by_two_managers_merge_by_type_and_each_removes_only_its_own()
    {
        var created = await _h.Client.CreateAsync(ResourceTypes.MemoryCluster, Harness.Cluster("mc"), None);
        MemoryClusterResource WithConditions(params (string Type, string Status)[] conditions) => created with
        {
            Status = new MemoryClusterStatus
            {
                Conditions = [.. conditions.Select(c => new Condition
                {
                    Type = c.Type,
                    Status = c.Status,
                    Reason = "Test",
                    Message = "set by a test",
                    LastTransitionTime = DateTimeOffset.UnixEpoch,
                })],
            },
        };
        Task<ApplyResult<MemoryClusterResource>> Apply(string manager, params (string, string)[] conditions) =>
            _h.Client.ApplyAsync(ResourceTypes.MemoryCluster, WithConditions(conditions), manager, force: false, "status", None);

        await Apply(Operator, (ConditionTypes.Ready, "True"), (ConditionTypes.Progressing, "False"));
        var both = await Apply("memorycluster-instance", (ConditionTypes.QuorumHealthy, "True"));
        Assert.Equal([ConditionTypes.Progressing, ConditionTypes.QuorumHealthy, ConditionTypes.Ready],
            both.Object.Status!.Conditions!.Select(c => c.Type).Order());

        var after = await Apply(Operator, (ConditionTypes.Ready, "False"));
        Assert.Equal([ConditionTypes.QuorumHealthy, ConditionTypes.Ready], after.Object.Status!.Conditions!.Select(c => c.Type).Order());
        Assert.Equal("False", after.Object.Status.Conditions!.Single(c => c.Type == ConditionTypes.Ready).Status);

        await Assert.ThrowsAsync<ConflictException>(() => Apply("memorycluster-instance", (ConditionTypes.Ready, "True")));
    }
}
