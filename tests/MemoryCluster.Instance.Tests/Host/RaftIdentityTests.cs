using MemoryCluster.Instance.Host;

namespace MemoryCluster.Instance.Tests.Host;

public sealed class RaftIdentityTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("mc-raft-id-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Theory]
    [InlineData(null, 4UL, false, "Record")]
    [InlineData(4UL, 4UL, false, "Keep")]
    [InlineData(4UL, 4UL, true, "Keep")]
    [InlineData(4UL, 6UL, true, "Retire")]
    [InlineData(4UL, 6UL, false, "Refuse")]
    public void The_raft_state_is_used_only_by_the_member_it_belongs_to(ulong? recorded, ulong id, bool join, string expected) =>
        Assert.Equal(expected, RaftIdentity.Decide(recorded, id, join).ToString());

    [Fact]
    public void A_removed_members_state_is_moved_aside_when_its_data_comes_back_joining_under_a_new_id()
    {
        var raft = Path.Combine(_dir.FullName, "raft");
        var pgdata = Path.Combine(_dir.FullName, "pgdata");
        var logs = new List<string>();
        Assert.Equal(RaftIdentityStep.Record, RaftIdentity.Prepare(raft, pgdata, 4, join: true, logs.Add));
        File.WriteAllText(Path.Combine(raft, "wal-0001.log"), "old log");
        Directory.CreateDirectory(pgdata);
        File.WriteAllText(Path.Combine(pgdata, "PG_VERSION"), "15");
        Assert.Equal(RaftIdentityStep.Keep, RaftIdentity.Prepare(raft, pgdata, 4, join: true, logs.Add));
        Assert.True(File.Exists(Path.Combine(pgdata, "PG_VERSION")));

        // Removed as member 4; its pod and volume come back as member 6: Raft state and PostgreSQL data set aside.
        Assert.Equal(RaftIdentityStep.Retire, RaftIdentity.Prepare(raft, pgdata, 6, join: true, logs.Add));
        Assert.Equal("6", File.ReadAllText(Path.Combine(raft, RaftIdentity.FileName)).Trim());
        Assert.False(File.Exists(Path.Combine(raft, "wal-0001.log")));
        Assert.Equal("old log", File.ReadAllText(Path.Combine(_dir.FullName, "raft.retired-4", "wal-0001.log")));
        Assert.False(Directory.Exists(pgdata), "no PostgreSQL data: it clones the primary");
        Assert.Equal("15", File.ReadAllText(Path.Combine(_dir.FullName, "pgdata.retired-4", "PG_VERSION")));
        Assert.Contains(logs, l => l.Contains("member 4", StringComparison.Ordinal) && l.Contains("member 6", StringComparison.Ordinal));

        // A member that does not join never gives up another member's state.
        var error = Assert.Throws<InvalidOperationException>(() => RaftIdentity.Prepare(raft, pgdata, 7, join: false, logs.Add));
        Assert.Contains("member 6", error.Message, StringComparison.Ordinal);
    }
}
