using MemoryCluster.Kube.TestServer;
using static MemoryCluster.Kube.TestServer.RbacObjects;

namespace MemoryCluster.Kube.Tests.ApiServer;

/// <summary>The double's RBAC, decided as the real server decides it (bindings, subjects, wildcards, names, scope).</summary>
public sealed class RbacPolicyTests
{
    private static readonly RbacUser Operator = RbacUser.ServiceAccount("ops", "operator");
    private static readonly RbacUser Reader = RbacUser.ServiceAccount("team-a", "reader");
    private static readonly RbacUser Alice = new("alice", ["developers", "system:authenticated"]);

    // The operator: cluster-wide rights on pods and MemoryClusters' status. The reader: get and list pods in team-a,
    // through a RoleBinding to a ClusterRole; one named ConfigMap there. Developers: everything in "dev".
    private static readonly RbacPolicy Policy = new(
        roles: [Role("one-config", "team-a", Rule([""], ["configmaps"], ["get", "update"], ["settings"]))],
        clusterRoles:
        [
            Role("operator", null, Rule([""], ["pods"], ["get", "list", "watch", "delete"]), Rule(["memorycluster.io"], ["memoryclusters/status"], ["patch"])),
            Role("pod-reader", null, Rule([""], ["pods"], ["get", "list"])),
            Role("everything", null, Rule(["*"], ["*"], ["*"])),
            Role("status-writer", null, Rule(["*"], ["*/status"], ["update"]), Rule(["apps"], ["deployments/*"], ["get"])),
        ],
        roleBindings:
        [
            Binding("readers", "team-a", "ClusterRole", "pod-reader", Subject("ServiceAccount", "reader")),
            Binding("config", "team-a", "Role", "one-config", Subject("ServiceAccount", "reader", "team-a")),
            Binding("devs", "dev", "ClusterRole", "everything", Subject("Group", "developers")),
            Binding("elsewhere", "team-b", "Role", "one-config", Subject("ServiceAccount", "reader", "team-a")),
        ],
        clusterRoleBindings:
        [
            Binding("operator", null, "ClusterRole", "operator", Subject("ServiceAccount", "operator", "ops")),
            Binding("status", null, "ClusterRole", "status-writer", Subject("User", "alice")),
        ]);

    public static TheoryData<string, RbacUser, RbacRequest, bool> Cases() => new()
    {
        { "a ClusterRoleBinding allows in every namespace", Operator, new("delete", "", "pods", null, "anywhere", "p"), true },
        { "and at the cluster scope (a list across namespaces)", Operator, new("list", "", "pods", null, null, null), true },
        { "a verb the rule lacks", Operator, new("create", "", "pods", null, "anywhere", null), false },
        { "another group", Operator, new("get", "apps", "pods", null, "anywhere", "p"), false },
        { "the subresource as named", Operator, new("patch", "memorycluster.io", "memoryclusters", "status", "x", "demo"), true },
        { "not the resource itself", Operator, new("patch", "memorycluster.io", "memoryclusters", null, "x", "demo"), false },
        { "the resource's rule does not cover a subresource", Operator, new("get", "", "pods", "log", "x", "p"), false },
        { "a RoleBinding to a ClusterRole allows in its namespace", Reader, new("list", "", "pods", null, "team-a", null), true },
        { "only there", Reader, new("list", "", "pods", null, "team-b", null), false },
        { "never at the cluster scope", Reader, new("list", "", "pods", null, null, null), false },
        { "a ServiceAccount subject defaults to the binding's namespace", Reader, new("get", "", "pods", null, "team-a", "p"), true },
        { "resourceNames allow the named object", Reader, new("get", "", "configmaps", null, "team-a", "settings"), true },
        { "not another", Reader, new("get", "", "configmaps", null, "team-a", "other"), false },
        { "nor a list", Reader, new("list", "", "configmaps", null, "team-a", null), false },
        { "a Role of another namespace is not found from a binding", Reader, new("get", "", "configmaps", null, "team-b", "settings"), false },
        { "a Group subject with wildcards", Alice, new("deletecollection", "apps", "statefulsets", null, "dev", null), true },
        { "wildcards stay in the binding's namespace", Alice, new("get", "apps", "statefulsets", null, "prod", "s"), false },
        { "*/status matches any status subresource", Alice, new("update", "apps", "statefulsets", "status", "prod", "s"), true },
        { "and nothing else", Alice, new("update", "apps", "statefulsets", null, "prod", "s"), false },
        { "resource/* is no wildcard (only *, */sub and exact names are)", Alice, new("get", "apps", "deployments", "scale", "prod", "d"), false },
        { "system:masters pass every check", new RbacUser("admin", ["system:masters"]), new("delete", "", "nodes", null, null, "n"), true },
        { "a user nobody bound", new RbacUser("mallory", ["system:authenticated"]), new("get", "", "pods", null, "team-a", "p"), false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_request_is_allowed_exactly_when_a_bound_rule_covers_it(string why, RbacUser user, RbacRequest request, bool allowed) =>
        Assert.True(Policy.Allows(user, request) == allowed, $"{why}: expected {(allowed ? "allowed" : "refused")}");

    [Fact]
    public void A_role_may_grant_only_what_its_writer_holds()
    {
        Assert.Null(Policy.FirstNotHeld(Reader, Role("r", "team-a", Rule([""], ["pods"], ["get"])), "team-a"));
        Assert.Equal("""{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}""",
            Policy.FirstNotHeld(Reader, Role("r", "team-a", Rule([""], ["pods"], ["get", "delete"])), "team-a"));
        Assert.NotNull(Policy.FirstNotHeld(Reader, Role("r", "team-b", Rule([""], ["pods"], ["get"])), "team-b"));
        Assert.Null(Policy.FirstNotHeld(Reader, Role("r", "team-a", Rule([""], ["configmaps"], ["get"], ["settings"])), "team-a"));
        Assert.NotNull(Policy.FirstNotHeld(Reader, Role("r", "team-a", Rule([""], ["configmaps"], ["get"])), "team-a"));
    }

    [Fact]
    public void The_refusal_reads_as_the_real_servers()
    {
        Assert.Equal(
            "pods is forbidden: User \"system:serviceaccount:team-a:reader\" cannot list resource \"pods\" in API group \"\" in the namespace \"team-b\"",
            new RbacRequest("list", "", "pods", null, "team-b", null).ForbiddenMessage(Reader));
        Assert.Equal(
            "memoryclusters.memorycluster.io \"demo\" is forbidden: User \"alice\" cannot patch resource \"memoryclusters/status\" in API group \"memorycluster.io\" at the cluster scope",
            new RbacRequest("patch", "memorycluster.io", "memoryclusters", "status", null, "demo").ForbiddenMessage(Alice));
    }
}
