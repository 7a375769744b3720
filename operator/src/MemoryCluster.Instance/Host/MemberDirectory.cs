using MemoryCluster.Instance.Node;
using MemoryCluster.Raft;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// Where every member is, from the committed Raft membership (founding members' details from the peers setting):
/// the members whose reports are read, that get a slot and are named in <c>synchronous_standby_names</c>, whom
/// requests are forwarded to. Before this member's Raft holds any membership (a member waiting to join), the peers
/// setting. Updated by <see cref="RaftService"/> on every applied change; read from anywhere.
/// </summary>
internal sealed class MemberDirectory(InstanceOptions options)
{
    private volatile Snapshot _current = new([.. options.Peers], [.. options.Peers.Select(p => p.Id)]);

    /// <summary>Raised (on Raft's observer) when the members change.</summary>
    public event Action? Changed;

    /// <summary>Every member, this one included when it is one.</summary>
    public IReadOnlyList<Peer> Members => _current.Members;

    /// <summary>The other members.</summary>
    public IReadOnlyList<Peer> Others => [.. _current.Members.Where(p => p.Id != options.Id)];

    /// <summary>The members that vote (all of them before Raft holds a membership).</summary>
    public bool IsVoter(ulong id) => _current.Voters.Contains(id);

    public Peer? Find(ulong id) => _current.Members.FirstOrDefault(p => p.Id == id);

    /// <summary>Takes the committed membership; false when nothing changed.</summary>
    public bool Update(IReadOnlyList<Member> committed)
    {
        ArgumentNullException.ThrowIfNull(committed);
        if (committed.Count == 0)
        {
            return false;
        }

        var next = new Snapshot(MembershipPlanner.Resolve(committed, options.Peers), [.. committed.Where(m => m.IsVoter).Select(m => m.Id.Value)]);
        var current = _current;
        if (next.Members.SequenceEqual(current.Members) && next.Voters.SetEquals(current.Voters))
        {
            return false;
        }

        _current = next;
        Changed?.Invoke();
        return true;
    }

    private sealed record Snapshot(IReadOnlyList<Peer> Members, HashSet<ulong> Voters);
}
