using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Node;

/// <summary>
/// A primary's proof, under way, that <see cref="K"/> standbys hold every commit it acknowledged (quorum mode): the
/// k of the membership <see cref="MembersAt"/> was seen in force at <see cref="InForceSince"/>; <see cref="Past"/> is
/// a WAL position read at least <see cref="QuorumProofs.MarginMs"/> later, so every commit acknowledged under a
/// smaller k lies before it.
/// </summary>
public sealed record QuorumProof(Epoch Epoch, Raft.LogIndex MembersAt, int K, long InForceSince, Lsn? Past);

/// <summary>
/// When a primary may record that its commits are on k standbys (<see cref="ControlCommandType.SetQuorumK"/>), so
/// that a failover counts with that k (<see cref="ControlState.QuorumK"/>). Pure.
/// </summary>
public static class QuorumProofs
{
    /// <summary>
    /// How long after the new k is seen in force (by the manager's own session, after the reload) the position is
    /// read: the walsenders, which release waiting commits, read the reload in their own loop, woken by the same
    /// signal; a commit they release under the old k within this margin lies before the position.
    /// </summary>
    public const long MarginMs = 1000;

    /// <summary>The k this primary must prove: the membership's, bounded by the standbys there are (as <c>synchronous_standby_names</c> is written).</summary>
    public static int Wanted(NodeConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return MembershipPlanner.QuorumK(config.Members.Count(m => m.IsVoter), config.Members.Count - 1);
    }

    /// <summary>The names of the members other than this one: the standbys <c>synchronous_standby_names</c> names.</summary>
    private static HashSet<string> Others(NodeConfig config) =>
        config.Members.Where(m => m.Id != config.Self).Select(m => m.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// The configuration in force is the membership's: at least its k, naming every other member and no one outside
    /// the membership (a removed member still streaming must not acknowledge for it).
    /// </summary>
    public static bool InForce(NodeConfig config, QuorumSetting? setting)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (setting is null || setting.K < Wanted(config))
        {
            return false;
        }

        var others = Others(config);
        return setting.Names.All(n => others.Contains(n) || n == config.NameOf(config.Self)) && others.All(setting.Names.Contains);
    }

    /// <summary>
    /// The proof after one state observation of this member's PostgreSQL at <paramref name="now"/>; null when there
    /// is nothing to prove (not quorum mode, not the writing primary of the control state, k already proven) or the
    /// membership's configuration is not in force.
    /// </summary>
    public static QuorumProof? Observe(QuorumProof? proof, ControlState control, NodeConfig config, bool mayWrite, PgObservation pg, long now)
    {
        ArgumentNullException.ThrowIfNull(control);
        ArgumentNullException.ThrowIfNull(pg);
        var k = Wanted(config);
        if (config.Mode != ReplicationMode.Quorum || control.Primary != config.Self || !mayWrite || pg.InRecovery || k < 1 || control.QuorumK >= k)
        {
            return null;
        }

        if (!InForce(config, pg.Sync))
        {
            return null;
        }

        if (proof is null || proof.Epoch != control.Epoch || proof.MembersAt != control.MembersAt || proof.K != k)
        {
            return new QuorumProof(control.Epoch, control.MembersAt, k, now, null);
        }

        return proof.Past is null && now - proof.InForceSince >= MarginMs ? proof with { Past = pg.WriteLsn } : proof;
    }

    /// <summary>
    /// The command that records the proof, once <see cref="QuorumProof.K"/> standbys of the membership stream with WAL
    /// flushed past its position, the configuration still in force; null until then, and once the control state has
    /// it (or moved to another epoch or membership).
    /// </summary>
    public static ControlCommand? Proven(QuorumProof? proof, PgObservation? pg, ControlState control, NodeConfig config)
    {
        ArgumentNullException.ThrowIfNull(control);
        ArgumentNullException.ThrowIfNull(config);
        if (proof is not { Past: { } past } || pg is null || !InForce(config, pg.Sync)
            || control.QuorumK >= proof.K || control.Epoch != proof.Epoch || control.MembersAt != proof.MembersAt)
        {
            return null;
        }

        var others = Others(config);
        var holding = pg.Standbys.Where(s => s.State == "streaming" && others.Contains(s.Name) && s.Flush >= past).Select(s => s.Name).Distinct(StringComparer.Ordinal).Count();
        return holding >= proof.K ? ControlCommand.SetQuorumK(proof.Epoch, proof.MembersAt, proof.K) : null;
    }
}
