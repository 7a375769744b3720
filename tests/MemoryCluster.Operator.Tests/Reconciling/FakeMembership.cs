using System.Collections.Concurrent;
using MemoryCluster.Instance.Api;

namespace MemoryCluster.Operator.Tests.Reconciling;

/// <summary>
/// The Raft membership as the managers' double holds it: what <c>GET /members</c> shows and what the signed
/// <c>POST /members</c> and <c>DELETE /members/{id}</c> change, one step per call as the real managers do (a learner
/// first, a voter on a later call once it caught up; ids never reused; never the primary). Every change is recorded,
/// in order, in <see cref="Calls"/>.
/// </summary>
internal sealed class FakeMembership
{
    private readonly Lock _lock = new();
    private readonly List<(ulong Id, string Name, bool Voter)> _members = [];
    private readonly HashSet<ulong> _removed = [];

    public FakeMembership(int founders)
    {
        for (var i = 0; i < founders; i++)
        {
            _members.Add(((ulong)i + 1, $"demo-{i}", true));
        }
    }

    /// <summary>Changes made, in order: <c>add demo-3#4</c>, <c>promote demo-3#4</c>, <c>remove demo-4#5</c>.</summary>
    public ConcurrentQueue<string> Calls { get; } = new();

    /// <summary>Requests refused for their signature (none expected from the operator).</summary>
    public ConcurrentQueue<string> Unsigned { get; } = new();

    /// <summary>Whether a learner has caught up (the test holds one back to interrupt a scale); all have by default.</summary>
    public Func<string, bool> CaughtUp { get; set; } = _ => true;

    /// <summary>Who is primary now (a removal of it is refused).</summary>
    public Func<string?> Primary { get; set; } = () => null;

    /// <summary>Raft member names as a manager's /status shows them (learners marked).</summary>
    public IReadOnlyList<string> StatusNames()
    {
        lock (_lock)
        {
            return [.. _members.Select(m => m.Voter ? m.Name : m.Name + " (learner)")];
        }
    }

    public IReadOnlyList<(ulong Id, string Name, bool Voter)> Members()
    {
        lock (_lock)
        {
            return [.. _members];
        }
    }

    public MembersDocument Document()
    {
        lock (_lock)
        {
            var members = _members.Select(m => new MemberDocument(m.Id, m.Name, $"{m.Name}.demo-hl.default.svc", 5432, 7000, 8000, m.Voter, null, null, null, null)).ToList();
            return new MembersDocument(members, false, "demo-1", 10, _members.Count(m => m.Voter) / 2, [.. _removed.Order()]);
        }
    }

    /// <summary>POST /members: (status, answer).</summary>
    public (int Status, ManagerAnswer Answer) Add(AddMemberRequest request)
    {
        lock (_lock)
        {
            if (_removed.Contains(request.Id))
            {
                return (409, new ManagerAnswer(false, $"id {request.Id} belonged to a member that was removed; ids are never reused"));
            }

            var index = _members.FindIndex(m => m.Id == request.Id);
            if (index < 0)
            {
                if (_members.Any(m => m.Name == request.Name))
                {
                    return (409, new ManagerAnswer(false, $"the name {request.Name} is taken"));
                }

                if (request.Host != $"{request.Name}.demo-hl.default.svc" || (request.PgPort, request.RaftPort, request.HttpPort) != (5432, 7000, 8000))
                {
                    return (400, new ManagerAnswer(false, $"not the pod's address: {request}"));
                }

                _members.Add((request.Id, request.Name, false));
                Calls.Enqueue($"add {request.Name}#{request.Id}");
                return (202, new ManagerAnswer(true, $"adding {request.Name} as a learner", Done: false));
            }

            var member = _members[index];
            if (member.Voter)
            {
                return (200, new ManagerAnswer(true, $"{member.Name} is a voter", Done: true));
            }

            if (!CaughtUp(member.Name))
            {
                return (202, new ManagerAnswer(true, $"{member.Name} is a learner catching up", Done: false));
            }

            _members[index] = member with { Voter = true };
            Calls.Enqueue($"promote {member.Name}#{member.Id}");
            return (200, new ManagerAnswer(true, $"promoting {member.Name} to voter: committed", Done: true));
        }
    }

    /// <summary>DELETE /members/{id}: (status, answer).</summary>
    public (int Status, ManagerAnswer Answer) Remove(ulong id, int statefulSetReplicas)
    {
        lock (_lock)
        {
            var index = _members.FindIndex(m => m.Id == id);
            if (index < 0)
            {
                return _removed.Contains(id) ? (200, new ManagerAnswer(true, $"member {id} was removed", Done: true)) : (404, new ManagerAnswer(false, $"member {id} is not a member"));
            }

            var member = _members[index];
            if (member.Name == Primary())
            {
                return (409, new ManagerAnswer(false, $"{member.Name} is the primary: switch over to another member first"));
            }

            if (_members.Count(m => m.Voter) <= 3 && member.Voter)
            {
                return (409, new ManagerAnswer(false, $"removing {member.Name} would leave 2 voters"));
            }

            _members.RemoveAt(index);
            _removed.Add(id);
            Calls.Enqueue($"remove {member.Name}#{id} (StatefulSet at {statefulSetReplicas})");
            return (200, new ManagerAnswer(true, $"removing {member.Name}: committed", Done: true));
        }
    }
}
