using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using static MemoryCluster.Instance.Tests.Node.NodeFixtures;

namespace MemoryCluster.Instance.Tests.Node;

public sealed class QuorumProofTests
{
    private static readonly Raft.LogIndex At = new(9);

    private static readonly NodeConfig Five = Config(members: 5);

    /// <summary>Member 1 is the primary at epoch 1 of five voters (k = 2), nothing proven.</summary>
    private static ControlState Unproven => State(1, 1) with { MembersAt = At, QuorumK = 1 };

    /// <summary>The five members' setting: ANY k of mc-2 … mc-5.</summary>
    private static QuorumSetting Setting(int k, params string[] names) => new(k, names.Length > 0 ? names : ["mc-2", "mc-3", "mc-4", "mc-5"]);

    private static PgObservation Pg(QuorumSetting? sync, ulong write, params StandbyObservation[] standbys) =>
        Primary(write, standbys: standbys) with { Sync = sync };

    private static QuorumProof? Run(ControlState control, params (long Now, PgObservation Pg)[] observations)
    {
        QuorumProof? proof = null;
        foreach (var (now, pg) in observations)
        {
            proof = QuorumProofs.Observe(proof, control, Five, mayWrite: true, pg, now);
        }

        return proof;
    }

    [Fact]
    public void The_position_is_read_a_margin_after_the_setting_is_seen_in_force_and_proven_once_k_standbys_flushed_past_it()
    {
        var margin = QuorumProofs.MarginMs;
        var proof = Run(Unproven, (0, Pg(Setting(2), 100)), (margin - 1, Pg(Setting(2), 150)));
        Assert.Null(Assert.IsType<QuorumProof>(proof).Past);

        proof = Run(Unproven, (0, Pg(Setting(2), 100)), (margin, Pg(Setting(2), 200)), (margin + 100, Pg(Setting(2), 300)));
        Assert.Equal(new Lsn(200), proof!.Past);
        Assert.Equal((new Epoch(1), At, 2), (proof.Epoch, proof.MembersAt, proof.K));

        // One standby past it, another behind: not yet; two past it: SetQuorumK at the epoch and membership.
        Assert.Null(QuorumProofs.Proven(proof, Pg(Setting(2), 300, Standby("mc-2", 250), Standby("mc-3", 199)), Unproven, Five));
        Assert.Equal(ControlCommand.SetQuorumK(new Epoch(1), At, 2), QuorumProofs.Proven(proof, Pg(Setting(2), 300, Standby("mc-2", 250), Standby("mc-3", 200), Standby("mc-4", 0)), Unproven, Five));

        // Not while the setting in force changed meanwhile (a reload by hand, another configuration).
        Assert.Null(QuorumProofs.Proven(proof, Pg(Setting(1), 300, Standby("mc-2", 250), Standby("mc-3", 260)), Unproven, Five));
    }

    [Fact]
    public void Only_streaming_members_count_and_a_proof_the_control_state_has_is_not_proposed_again()
    {
        var proof = Run(Unproven, (0, Pg(Setting(2), 100)), (QuorumProofs.MarginMs, Pg(Setting(2), 200)));

        // A removed member still streaming (mc-9) and a member only catching up do not count.
        var removed = Pg(Setting(2), 300, Standby("mc-2", 250), Standby("mc-9", 260), Standby("mc-3", 270) with { State = "catchup" });
        Assert.Null(QuorumProofs.Proven(proof, removed, Unproven, Five));

        // Once applied (or at another epoch or membership), the proof is not proposed again.
        var holding = Pg(Setting(2), 300, Standby("mc-2", 250), Standby("mc-3", 260));
        Assert.NotNull(QuorumProofs.Proven(proof, holding, Unproven, Five));
        Assert.Null(QuorumProofs.Proven(proof, holding, Unproven with { QuorumK = 2 }, Five));
        Assert.Null(QuorumProofs.Proven(proof, holding, Unproven with { Epoch = new Epoch(2) }, Five));
        Assert.Null(QuorumProofs.Proven(proof, holding, Unproven with { MembersAt = new Raft.LogIndex(10) }, Five));
    }

    [Theory]
    [InlineData(2, "mc-2,mc-3,mc-4,mc-5", true)]
    [InlineData(2, "mc-1,mc-2,mc-3,mc-4,mc-5", true)]
    [InlineData(3, "mc-2,mc-3,mc-4,mc-5", true)]
    [InlineData(1, "mc-2,mc-3,mc-4,mc-5", false)]
    [InlineData(2, "mc-2,mc-3,mc-4", false)]
    [InlineData(2, "mc-2,mc-3,mc-4,mc-5,mc-9", false)]
    public void The_setting_in_force_is_the_memberships_when_it_has_its_k_names_every_other_member_and_no_one_else(int k, string names, bool inForce) =>
        Assert.Equal(inForce, QuorumProofs.InForce(Five, new QuorumSetting(k, names.Split(','))));

    [Fact]
    public void A_setting_not_in_force_another_membership_or_epoch_starts_the_proof_again()
    {
        var margin = QuorumProofs.MarginMs;
        Assert.Null(Run(Unproven, (0, Pg(Setting(1), 100))));
        Assert.Null(Run(Unproven, (0, Pg(null, 100))));
        Assert.Null(Run(Unproven, (0, Pg(Setting(2), 100)), (margin, Pg(Setting(2, "mc-2", "mc-3", "mc-4"), 200))));

        var proof = Run(Unproven, (0, Pg(Setting(2), 100)), (margin, Pg(Setting(2), 200)));
        var changed = QuorumProofs.Observe(proof, Unproven with { MembersAt = new Raft.LogIndex(12) }, Five, true, Pg(Setting(2), 300), margin + 50);
        Assert.Equal((new Raft.LogIndex(12), (Lsn?)null, margin + 50), (changed!.MembersAt, changed.Past, changed.InForceSince));
        var later = QuorumProofs.Observe(proof, Unproven with { Epoch = new Epoch(2) }, Five, true, Pg(Setting(2), 300), margin + 50);
        Assert.Null(later!.Past);
    }

    [Fact]
    public void Nothing_is_proven_in_async_mode_by_a_replica_by_a_primary_that_may_not_write_or_once_proven()
    {
        var pg = Pg(Setting(2), 100);
        Assert.Null(QuorumProofs.Observe(null, Unproven, Config(members: 5, mode: ReplicationMode.Async), true, pg, 0));
        Assert.Null(QuorumProofs.Observe(null, Unproven, Config(self: 2, members: 5), true, pg, 0));
        Assert.Null(QuorumProofs.Observe(null, Unproven, Five, mayWrite: false, pg, 0));
        Assert.Null(QuorumProofs.Observe(null, Unproven with { QuorumK = 2 }, Five, true, pg, 0));
        Assert.Equal(1, QuorumProofs.Wanted(Config(members: 3)));
        Assert.Equal(2, QuorumProofs.Wanted(Five));
    }
}
