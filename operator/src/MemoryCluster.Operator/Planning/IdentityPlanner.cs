using MemoryCluster.Api;
using MemoryCluster.Instance.Control;

namespace MemoryCluster.Operator.Planning;

/// <summary>The Raft identity of the instance pods: who founded the cluster, and each pod's member id.</summary>
/// <param name="Founders">The founding members' ids (instance setting <c>founders</c>): every other member joins.</param>
/// <param name="Ids">The member id of the pod of each ordinal, from 0.</param>
public sealed record MemberIdentities(IReadOnlyList<MemberId> Founders, IReadOnlyList<MemberId> Ids)
{
    /// <summary>A new cluster of <paramref name="instances"/>: founded by all of them, the pod of ordinal N is member N+1.</summary>
    public static MemberIdentities Founding(int instances) =>
        new([.. Enumerable.Range(1, instances).Select(i => new MemberId((ulong)i))], [.. Enumerable.Range(1, instances).Select(i => new MemberId((ulong)i))]);

    /// <summary>As recorded in the MemoryCluster's status.</summary>
    public IReadOnlyList<MemberIdentity> ToStatus(ClusterNames names) =>
        [.. Ids.Select((id, ordinal) => new MemberIdentity { Name = names.Pod(ordinal), Id = (long)id.Value })];
}

/// <summary>What the identity planner reads.</summary>
/// <param name="Pods">How many ordinals need an id: max(spec.instances, the StatefulSet's size).</param>
/// <param name="Instances">spec.instances.</param>
/// <param name="StatefulSetReplicas">The StatefulSet's size now; null before the cluster was first created.</param>
/// <param name="Recorded">The status the operator recorded (members and founders); null fields when never recorded.</param>
/// <param name="Members">The committed membership, pod name to member id; null when no manager could tell.</param>
/// <param name="Removed">The ids of members ever removed; null when no manager could tell.</param>
public sealed record IdentityInput(
    int Pods,
    int Instances,
    int? StatefulSetReplicas,
    MemoryClusterStatus? Recorded,
    IReadOnlyDictionary<string, MemberId>? Members,
    IReadOnlyList<MemberId>? Removed);

/// <summary>
/// Assigns each instance pod its Raft member id, pure. The pods that create a cluster are its founders, the pod of
/// ordinal N member N+1; a pod added by a scale is member N+1 too unless that id was used before. Ids are never reused
/// (the managers refuse a removed member's id), so the pod of a member that was removed gets, when it is wanted again,
/// the next id above every id known. An id once given is kept while the pod's member is not removed; a pod that is
/// leaving keeps its id until it is gone. The membership the managers hold wins over what was recorded.
/// </summary>
public static class IdentityPlanner
{
    public static MemberIdentities Plan(ClusterNames names, IdentityInput input)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(input);
        var founders = input.Recorded?.FoundingMembers is { Count: > 0 } recordedFounders
            ? [.. recordedFounders.Select(f => new MemberId((ulong)f))]
            : Enumerable.Range(1, input.StatefulSetReplicas ?? input.Instances).Select(i => new MemberId((ulong)i)).ToList();
        var recorded = (input.Recorded?.Members ?? []).ToDictionary(m => m.Name, m => new MemberId((ulong)m.Id), StringComparer.Ordinal);
        var removed = (input.Removed ?? []).ToHashSet();
        // Taken: every id some member holds, held, or was given; the founders' own ids are their pods' (ordinal + 1).
        var taken = recorded.Values.Concat(removed).Concat(input.Members?.Values ?? []).ToHashSet();

        var ids = new List<MemberId>();
        for (var ordinal = 0; ordinal < input.Pods; ordinal++)
        {
            var pod = names.Pod(ordinal);
            MemberId id;
            if (input.Members is { } members && members.TryGetValue(pod, out var member))
            {
                id = member;
            }
            else if (recorded.TryGetValue(pod, out var given) && (!removed.Contains(given) || ordinal >= input.Instances))
            {
                id = given;
            }
            else
            {
                var natural = new MemberId((ulong)ordinal + 1);
                id = recorded.ContainsKey(pod) || taken.Contains(natural) ? new MemberId(taken.Concat(founders).Max().Value + 1) : natural;
                taken.Add(id);
            }

            ids.Add(id);
        }

        return new MemberIdentities(founders, ids);
    }
}
