using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>Who makes a request: a user name and its groups, as the real server's authenticators give them.</summary>
public sealed record RbacUser(string Name, IReadOnlyList<string> Groups)
{
    /// <summary>The identity a ServiceAccount's token carries.</summary>
    public static RbacUser ServiceAccount(string ns, string name) =>
        new($"system:serviceaccount:{ns}:{name}", ["system:serviceaccounts", $"system:serviceaccounts:{ns}", "system:authenticated"]);

    /// <summary>Members of <c>system:masters</c> pass every check, as the real server's cluster admins do.</summary>
    public bool IsMaster => Groups.Contains("system:masters");
}

/// <summary>
/// A resource request as RBAC sees it. <paramref name="Verb"/> is RBAC's (get, list, watch, create, update, patch,
/// delete, deletecollection); <paramref name="Namespace"/> is null for cluster-scoped resources and for requests
/// across every namespace.
/// </summary>
public sealed record RbacRequest(string Verb, string ApiGroup, string Resource, string? Subresource, string? Namespace, string? Name)
{
    /// <summary>The resource as rules name it: <c>pods</c>, or <c>memoryclusters/status</c> for a subresource.</summary>
    public string RuleResource => Subresource is null ? Resource : Resource + "/" + Subresource;

    /// <summary>The message the real server gives when RBAC refuses this request.</summary>
    public string ForbiddenMessage(RbacUser user)
    {
        // The group-qualified resource, without the subresource: deployments.apps "x", pods "p".
        var qualified = ApiGroup.Length == 0 ? Resource : Resource + "." + ApiGroup;
        var what = Name is null ? qualified : $"{qualified} \"{Name}\"";
        var scope = Namespace is null ? "at the cluster scope" : $"in the namespace \"{Namespace}\"";
        return $"{what} is forbidden: User \"{user.Name}\" cannot {Verb} resource \"{RuleResource}\" in API group \"{ApiGroup}\" {scope}";
    }
}

/// <summary>
/// Kubernetes RBAC over the Roles, ClusterRoles and their bindings the double holds: a request is allowed when a
/// ClusterRoleBinding, or a RoleBinding in the request's namespace, names the user (as a User, a Group it belongs to,
/// or its ServiceAccount) and refers to a role with a rule that covers it. Nothing is allowed unless some rule allows
/// it; there are no deny rules. A pure function of its inputs.
/// </summary>
public sealed class RbacPolicy
{
    private readonly Dictionary<string, JsonObject> _clusterRoles;
    private readonly Dictionary<(string Ns, string Name), JsonObject> _roles;
    private readonly List<JsonObject> _clusterRoleBindings;
    private readonly List<JsonObject> _roleBindings;

    public RbacPolicy(IEnumerable<JsonObject> roles, IEnumerable<JsonObject> clusterRoles, IEnumerable<JsonObject> roleBindings, IEnumerable<JsonObject> clusterRoleBindings)
    {
        _roles = roles.ToDictionary(r => (Namespace(r) ?? "", Name(r)));
        _clusterRoles = clusterRoles.ToDictionary(Name, StringComparer.Ordinal);
        _roleBindings = [.. roleBindings];
        _clusterRoleBindings = [.. clusterRoleBindings];
    }

    /// <summary>True when the user may make the request.</summary>
    public bool Allows(RbacUser user, RbacRequest request)
    {
        if (user.IsMaster)
        {
            return true;
        }

        foreach (var binding in _clusterRoleBindings)
        {
            if (Binds(binding, user, null) && RoleOf(binding, null) is { } role && Covers(role, request))
            {
                return true;
            }
        }

        if (request.Namespace is not { } ns)
        {
            return false;
        }

        foreach (var binding in _roleBindings)
        {
            if (Namespace(binding) == ns && Binds(binding, user, ns) && RoleOf(binding, ns) is { } role && Covers(role, request))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The first rule of <paramref name="role"/> (a Role or ClusterRole being written into <paramref name="ns"/>, or
    /// cluster-wide when null) that <paramref name="user"/> does not hold, described; null when the user holds all of
    /// them. The real server refuses to let anyone grant what they do not hold (escalation prevention).
    /// </summary>
    public string? FirstNotHeld(RbacUser user, JsonObject role, string? ns)
    {
        if (user.IsMaster)
        {
            return null;
        }

        foreach (var rule in Rules(role))
        {
            var names = Strings(rule["resourceNames"]);
            foreach (var group in Strings(rule["apiGroups"]))
            {
                foreach (var resource in Strings(rule["resources"]))
                {
                    var slash = resource.IndexOf('/', StringComparison.Ordinal);
                    var (plural, sub) = slash < 0 ? (resource, null) : (resource[..slash], resource[(slash + 1)..]);
                    foreach (var verb in Strings(rule["verbs"]))
                    {
                        foreach (var name in names.Count == 0 ? [null] : names.Cast<string?>())
                        {
                            if (!Allows(user, new RbacRequest(verb, group, plural, sub, ns, name)))
                            {
                                return $"{{APIGroups:[\"{group}\"], Resources:[\"{resource}\"], Verbs:[\"{verb}\"]}}";
                            }
                        }
                    }
                }
            }
        }

        return null;
    }

    /// <summary>The role a binding refers to: a ClusterRole, or (for a RoleBinding) a Role of its own namespace.</summary>
    public JsonObject? RoleOf(JsonObject binding, string? ns)
    {
        var roleRef = binding["roleRef"] as JsonObject;
        var kind = (string?)roleRef?["kind"];
        var name = (string?)roleRef?["name"] ?? "";
        return kind switch
        {
            "ClusterRole" => _clusterRoles.GetValueOrDefault(name),
            "Role" when ns is not null => _roles.GetValueOrDefault((ns, name)),
            _ => null,
        };
    }

    private static bool Binds(JsonObject binding, RbacUser user, string? bindingNamespace)
    {
        foreach (var subject in (binding["subjects"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var name = (string?)subject["name"];
            var matches = (string?)subject["kind"] switch
            {
                "User" => name == user.Name,
                "Group" => name is not null && user.Groups.Contains(name),
                "ServiceAccount" => $"system:serviceaccount:{(string?)subject["namespace"] ?? bindingNamespace}:{name}" == user.Name,
                _ => false,
            };
            if (matches)
            {
                return true;
            }
        }

        return false;
    }

    private static bool Covers(JsonObject role, RbacRequest request) => Rules(role).Any(rule =>
        Matches(rule["verbs"], request.Verb)
        && Matches(rule["apiGroups"], request.ApiGroup)
        && ResourceMatches(Strings(rule["resources"]), request)
        && NameMatches(Strings(rule["resourceNames"]), request));

    private static bool Matches(JsonNode? values, string value) => Strings(values) is var list && (list.Contains("*") || list.Contains(value));

    private static bool ResourceMatches(List<string> resources, RbacRequest request) =>
        resources.Contains("*")
        || resources.Contains(request.RuleResource)
        || (request.Subresource is { } sub && resources.Contains("*/" + sub));

    // resourceNames restrict requests that name one object; a create, list, watch or deletecollection names none, so a
    // rule with names never allows them (as in the real server).
    private static bool NameMatches(List<string> names, RbacRequest request) =>
        names.Count == 0 || (request.Name is { } name && request.Verb is not ("create" or "list" or "watch" or "deletecollection") && names.Contains(name));

    private static IEnumerable<JsonObject> Rules(JsonObject role) => (role["rules"] as JsonArray ?? []).OfType<JsonObject>();

    private static List<string> Strings(JsonNode? node) => node is JsonArray a ? [.. a.Select(v => (string?)v).OfType<string>()] : [];

    private static string Name(JsonObject o) => (string?)o["metadata"]?["name"] ?? "";

    private static string? Namespace(JsonObject o) => (string?)o["metadata"]?["namespace"];
}
