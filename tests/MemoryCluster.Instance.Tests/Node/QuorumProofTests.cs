using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using static MemoryCluster.Instance.Tests.Node.NodeFixtures;

namespace MemoryCluster.Instance.Tests.Node;

public sealed class QuorumProofTests
{
    private static readonly Raft.LogIndex At = new(9);

    /// <summary>Member 1 is the primary at epoch 1 of five voters (k = 2), nothing proven yet.</summary>
    private static ControlState Unproven => State(1, 1) with { MembersAt = At };

    private static PgObservation Pg(int? syncK, ulong write, params StandbyObservation[] standbys) =>
        Primary(write, standbys: standbys) with { SyncK = syncK };

    private static QuorumProof? Run(ControlState control, params (long Now, PgObservation Pg)[] observations)
    {
        QuorumProof? proof = null;
        foreach (var (now, pg) in observations)
        {
            proof = QuorumProofs.Observe(proof, control, Config(members: 5), mayWrite: true, pg, now);
        }

        return proof;
    }

    [Fact]
    public void The_position_is_read_a_margin_after_the_k_is_seen_in_force_and_proven_once_k_standbys_flushed_past_it()
    {
        var margin = QuorumProofs.MarginMs;
        var proof = Run(Unproven, (0, Pg(2, 100)), (margin - 1, Pg(2, 150)));
        Assert.Null(Assert.IsType<QuorumProof>(proof).Past);

        proof = Run(Unproven, (0, Pg(2, 100)), (margin, Pg(2, 200)), (margin + 100, Pg(2, 300)));
        Assert.Equal(new Lsn(200), proof!.Past);
        Assert.Equal((new Epoch(1), At, 2), (proof.Epoch, proof.MembersAt, proof.K));

        // One standby past it, another behind: not yet; two past it: SetQuorumK at the epoch and membership.
        Assert.Null(QuorumProofs.Proven(proof, Pg(2, 300, Standby("mc-2", 250), Standby("mc-3", 199))));
        Assert.Equal(ControlCommand.SetQuorumK(new Epoch(1), At, 2), QuorumProofs.Proven(proof, Pg(2, 300, Standby("mc-2", 250), Standby("mc-3", 200), Standby("mc-4", 0))));

        // Not while the k in force dropped meanwhile (a reload by hand, another configuration).
        Assert.Null(QuorumProofs.Proven(proof, Pg(1, 300, Standby("mc-2", 250), Standby("mc-3", 260))));
    }

    [Fact]
    public void A_k_not_in_force_another_membership_or_epoch_starts_the_proof_again()
    {
        var margin = QuorumProofs.MarginMs;
        Assert.Null(Run(Unproven, (0, Pg(1, 100))));
        Assert.Null(Run(Unproven, (0, Pg(null, 100))));
        Assert.Null(Run(Unproven, (0, Pg(2, 100)), (margin, Pg(1, 200))));

        var proof = Run(Unproven, (0, Pg(2, 100)), (margin, Pg(2, 200)));
        var changed = QuorumProofs.Observe(proof, Unproven with { MembersAt = new Raft.LogIndex(12) }, Config(members: 5), true, Pg(2, 300), margin + 50);
        Assert.Equal((new Raft.LogIndex(12), (Lsn?)null, margin + 50), (changed!.MembersAt, changed.Past, changed.InForceSince));
        var later = QuorumProofs.Observe(proof, Unproven with { Epoch = new Epoch(2) }, Config(members: 5), true, Pg(2, 300), margin + 50);
        Assert.Null(later!.Past);
    }

    [Fact]
    public void Nothing_is_proven_in_async_mode_by_a_replica_by_a_primary_that_may_not_write_or_once_proven()
    {
        var pg = Pg(2, 100);
        Assert.Null(QuorumProofs.Observe(null, Unproven, Config(members: 5, mode: ReplicationMode.Async), true, pg, 0));
        Assert.Null(QuorumProofs.Observe(null, Unproven, Config(self: 2, members: 5), true, pg, 0));
        Assert.Null(QuorumProofs.Observe(null, Unproven, Config(members: 5), mayWrite: false, pg, 0));
        Assert.Null(QuorumProofs.Observe(null, Unproven with { QuorumK = 2 }, Config(members: 5), true, pg, 0));
        Assert.Equal(1, QuorumProofs.Wanted(Config(members: 3)));
        Assert.Equal(2, QuorumProofs.Wanted(Config(members: 5)));
    }
}
