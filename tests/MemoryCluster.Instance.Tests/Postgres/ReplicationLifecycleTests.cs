using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Tests.Postgres;

/// <summary>The PostgreSQL plumbing the manager drives, against real PostgreSQL 15 servers on loopback.</summary>
[Trait("Category", "Integration")]
public sealed class ReplicationLifecycleTests
{
    private static async Task<TestNode> BootstrapPrimaryAsync(string name, params string[] slots)
    {
        var node = TestNode.Create(name);
        await node.Tools.InitDbAsync(node.DataDirectory, CancellationToken.None);
        node.WriteConfig(upstream: null);
        await node.StartAsync();
        await node.Client.EnsureRoleAsync(TestNode.ReplicationUser, TestNode.ReplicationPassword, replication: true, CancellationToken.None);
        await node.Client.GrantRewindAsync(TestNode.ReplicationUser, CancellationToken.None);
        await node.Client.EnsureSlotsAsync(slots, dropOthers: false, CancellationToken.None);
        return node;
    }

    private static async Task<TestNode> CloneAsync(TestNode primary, string name)
    {
        var replica = TestNode.Create(name);
        await replica.Tools.BaseBackupAsync(replica.DataDirectory, primary.SourceFor(replica), CancellationToken.None);
        replica.WriteConfig(primary.SourceFor(replica));
        await replica.StartAsync();
        return replica;
    }

    /// <summary>Waits until <paramref name="condition"/> holds, at most 30 s; the failure shows the nodes' PostgreSQL logs.</summary>
    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, params TestNode[] logsOf)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}\n{string.Join('\n', logsOf.Select(n => n.Log.Tail()))}");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Slots_are_made_in_one_statement_reserving_wal_at_once_and_only_a_removed_members_are_dropped()
    {
        await using var node = await BootstrapPrimaryAsync("slots", "a", "b", "a");
        await node.Client.EnsureSlotsAsync(["a", "b", "c"], dropOthers: false, CancellationToken.None); // again: only c is new
        Assert.Equal(3, await node.ScalarAsync("select count(*) from pg_replication_slots where slot_type = 'physical' and restart_lsn is not null"));

        await node.Client.EnsureSlotsAsync(["a", "c"], dropOthers: true, CancellationToken.None);
        Assert.Equal(0, await node.ScalarAsync("select count(*) from pg_replication_slots where slot_name = 'b'"));
        Assert.Equal(2, await node.ScalarAsync("select count(*) from pg_replication_slots where slot_name in ('a', 'c')"));
    }

    [Fact]
    public async Task A_replica_keeps_slots_for_the_others_at_its_replay_position_and_a_replica_streams_through_one_after_its_promotion()
    {
        await using var a = await BootstrapPrimaryAsync("a", "b", "c");
        await using var b = await CloneAsync(a, "b");
        await using var c = await CloneAsync(a, "c");

        // On the standby b: a slot for each other member, reserving WAL at once; one for a removed member is dropped.
        await b.Client.EnsureSlotsAsync(["a", "c", "gone"], dropOthers: false, CancellationToken.None);
        await b.Client.EnsureSlotsAsync(["a", "c"], dropOthers: true, CancellationToken.None);
        Assert.Equal(2, await b.ScalarAsync("select count(*) from pg_replication_slots where slot_name in ('a', 'c') and restart_lsn is not null"));
        Assert.Equal(0, await b.ScalarAsync("select count(*) from pg_replication_slots where slot_name = 'gone'"));

        // b replays more WAL (into the next segment); the next step moves both slots to what it has replayed.
        const string Reserved = "select (min(restart_lsn) - '0/0')::bigint from pg_replication_slots";
        var before = await b.ScalarAsync(Reserved);
        await a.ExecuteAsync("create table t (id int primary key); insert into t select generate_series(1, 10000); select pg_switch_wal()");
        await WaitUntilAsync(async () => await b.ScalarAsync("select count(*) from pg_class where relname = 't'") == 1 && await b.ScalarAsync("select count(*) from t") == 10000, "b has the rows", b);
        await b.Client.EnsureSlotsAsync(["a", "c"], dropOthers: true, CancellationToken.None);
        var replayed = await b.ScalarAsync("select (pg_last_wal_replay_lsn() - '0/0')::bigint");
        var after = await b.ScalarAsync(Reserved);
        Assert.True(after > before && after <= replayed && replayed - after < 16 * 1024 * 1024, $"reserved from {before}, then {after}; replayed {replayed}");

        // b is promoted: the slots are still there, nothing is made, and c streams from b through its slot.
        await a.StopAsync(ShutdownMode.Immediate);
        await b.Client.SignalPromoteAsync(CancellationToken.None);
        await b.Client.WaitOutOfRecoveryAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.Equal(2, await b.ScalarAsync("select count(*) from pg_replication_slots where slot_name in ('a', 'c') and restart_lsn is not null"));
        await b.Client.EnsureSlotsAsync(["a", "c"], dropOthers: true, CancellationToken.None);
        await b.ExecuteAsync("insert into t select generate_series(10001, 10010)");
        c.WriteConfig(b.SourceFor(c));
        await c.Client.ReloadAsync(CancellationToken.None);
        await WaitUntilAsync(async () => await c.ScalarAsync("select count(*) from t") == 10010, "c has b's new rows", b, c);
        Assert.Equal(1, await b.ScalarAsync("select count(*) from pg_replication_slots where slot_name = 'c' and active"));
    }

    [Fact]
    public async Task Replica_cloned_through_its_slot_streams_what_the_primary_writes()
    {
        await using var primary = await BootstrapPrimaryAsync("a", "b");
        await using var replica = await CloneAsync(primary, "b");

        await primary.ExecuteAsync("create table t (id int primary key); insert into t select generate_series(1, 100)");
        await WaitUntilAsync(async () => (await replica.Client.GetStateAsync(CancellationToken.None)).Receiver == WalReceiverStatus.Streaming, "the replica streams");

        // The table must exist on the replica before it can be counted there: "from t" fails to parse until it does.
        await WaitUntilAsync(async () => await replica.ScalarAsync("select count(*) from pg_class where relname = 't'") == 1 && await replica.ScalarAsync("select count(*) from t") == 100, "the rows reach the replica", primary, replica);

        var primaryState = await primary.Client.GetStateAsync(CancellationToken.None);
        var replicaState = await replica.Client.GetStateAsync(CancellationToken.None);
        Assert.False(primaryState.InRecovery);
        Assert.True(replicaState.InRecovery);
        Assert.Equal(TimelineId.First, replicaState.Timeline);
        Assert.NotNull(replicaState.ReceiveLsn);
        Assert.True(replicaState.ReceiveLsn >= replicaState.ReplayLsn);
        var standby = Assert.Single(primaryState.Standbys);
        Assert.Equal("b", standby.Name);
        Assert.Equal("streaming", standby.State);
        Assert.Equal(1, await primary.ScalarAsync("select count(*) from pg_replication_slots where slot_name = 'b' and active"));

        // The state query reads the k of synchronous_standby_names in force: none, then ANY 1 once reloaded.
        Assert.Equal(QuorumSetting.None.K, primaryState.Sync!.K);
        await primary.ExecuteAsync("alter system set synchronous_standby_names = 'ANY 1 (\"b\")'");
        await primary.Client.ReloadAsync(CancellationToken.None);
        await WaitUntilAsync(async () => (await primary.Client.GetStateAsync(CancellationToken.None)).Sync is { K: 1, Names: ["b"] }, "ANY 1 (b) in force after the reload", primary);
        await primary.ExecuteAsync("insert into t values (101)");
    }

    [Fact]
    public async Task Promoted_replica_takes_writes_and_the_rewound_old_primary_follows_it()
    {
        await using var a = await BootstrapPrimaryAsync("a", "b");
        await using var b = await CloneAsync(a, "b");
        await a.ExecuteAsync("create table t (id int primary key); insert into t select generate_series(1, 10)");
        await WaitUntilAsync(async () => await b.ScalarAsync("select count(*) from pg_class where relname = 't'") == 1 && await b.ScalarAsync("select count(*) from t") == 10, "b has the rows");

        // The old primary dies hard and writes nothing more; b is promoted and gets a slot for a.
        await a.StopAsync(ShutdownMode.Immediate);
        await b.Client.SignalPromoteAsync(CancellationToken.None);
        await b.Client.WaitOutOfRecoveryAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        await b.Client.CheckpointAsync(CancellationToken.None);
        var promoted = await b.Client.GetStateAsync(CancellationToken.None);
        Assert.False(promoted.InRecovery);
        Assert.Equal(new TimelineId(2), promoted.Timeline);
        await b.Client.EnsureSlotsAsync(["a"], dropOthers: false, CancellationToken.None);
        await b.ExecuteAsync("insert into t select generate_series(11, 20)");

        // a rewinds from b (a crashed: pg_rewind runs its crash recovery itself) and rejoins as b's replica.
        var rewind = await a.Tools.RewindAsync(a.DataDirectory, b.SourceFor(a).ConnInfo + " dbname=postgres", CancellationToken.None);
        Assert.Contains("servers diverged at WAL location", rewind, StringComparison.Ordinal);
        a.WriteConfig(b.SourceFor(a));
        await a.StartAsync();
        await WaitUntilAsync(async () => await a.ScalarAsync("select count(*) from t") == 20, "a has b's new rows", a, b);
        var rejoined = await a.Client.GetStateAsync(CancellationToken.None);
        Assert.True(rejoined.InRecovery);
        await WaitUntilAsync(async () => (await a.Client.GetStateAsync(CancellationToken.None)).Receiver == WalReceiverStatus.Streaming, "a streams from b", a, b);
        Assert.Equal(new TimelineId(2), (await a.Client.GetStateAsync(CancellationToken.None)).Timeline);
    }

    [Fact]
    public async Task A_promotion_at_a_later_epoch_takes_the_epochs_timeline_and_never_follows_a_placeholder()
    {
        await using var a = await BootstrapPrimaryAsync("a", "b", "c");
        await using var b = await CloneAsync(a, "b");
        await using var c = await CloneAsync(a, "c");
        await a.ExecuteAsync("create table t (id int primary key); insert into t select generate_series(1, 10)");
        await WaitUntilAsync(async () => await b.ScalarAsync("select count(*) from pg_class where relname = 't'") == 1 && await b.ScalarAsync("select count(*) from t") == 10, "b has the rows", b);
        await WaitUntilAsync(async () => await c.ScalarAsync("select count(*) from pg_class where relname = 't'") == 1 && await c.ScalarAsync("select count(*) from t") == 10, "c has the rows", c);

        // The old primary dies; b is promoted at epoch 4 from timeline 1. With the old primary gone, b's startup process
        // rescans for newer timelines every wal_retrieve_retry_interval (500 ms) and once more at the promotion.
        await a.StopAsync(ShutdownMode.Immediate);
        var wal = Path.Combine(b.DataDirectory, "pg_wal");
        foreach (var id in TimelinePlaceholders.ToWrite(TimelineId.First, new Epoch(4), []))
        {
            await File.WriteAllTextAsync(Path.Combine(wal, id.HistoryFileName), TimelinePlaceholders.Content);
        }

        await Task.Delay(1500);
        await b.Client.SignalPromoteAsync(CancellationToken.None);
        await b.Client.WaitOutOfRecoveryAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        await b.Client.CheckpointAsync(CancellationToken.None);
        Assert.Equal(new TimelineId(4), (await b.Client.GetStateAsync(CancellationToken.None)).Timeline);

        // The new timeline's history names timeline 1 only, ending where b's WAL ended: no placeholder on its line.
        var history = WalLine.FromHistoryFile(new TimelineId(4), await File.ReadAllTextAsync(Path.Combine(wal, new TimelineId(4).HistoryFileName)));
        var parent = Assert.Single(history.Ancestors);
        Assert.Equal(TimelineId.First, parent.Timeline);
        Assert.DoesNotContain(b.Log.Tail(), "new target timeline is", StringComparison.Ordinal);

        // c, which holds what b held, follows b onto timeline 4 without a rewind.
        await b.Client.EnsureSlotsAsync(["c"], dropOthers: false, CancellationToken.None);
        await b.ExecuteAsync("insert into t select generate_series(11, 20)");
        await c.StopAsync();
        c.WriteConfig(b.SourceFor(c));
        await c.StartAsync();
        await WaitUntilAsync(async () => await c.ScalarAsync("select count(*) from t") == 20, "c has b's new rows", b, c);
        Assert.Equal(new TimelineId(4), (await c.Client.GetStateAsync(CancellationToken.None)).Timeline);
        Assert.DoesNotContain(c.Log.Tail(), "forked off", StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stop_escalates_past_a_postmaster_that_ignores_smart_shutdown()
    {
        await using var node = await BootstrapPrimaryAsync("a");
        // A client session keeps a smart shutdown waiting forever; the ladder moves on to fast.
        await using var session = node.Connect();
        await session.OpenAsync();
        var stop = node.Process.StopAsync(ShutdownMode.Smart, TimeSpan.FromMilliseconds(500), CancellationToken.None);
        await stop.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(node.Process.HasExited);
        Assert.Equal(0, await node.Process.Exited);
    }

    [Fact]
    public async Task Tool_failure_reports_the_program_and_its_output()
    {
        var node = TestNode.Create("x");
        try
        {
            var error = await Assert.ThrowsAsync<PgToolException>(() => node.Tools.RewindAsync(node.DataDirectory, "host=127.0.0.1 port=1", CancellationToken.None));
            Assert.StartsWith("pg_rewind exited with code", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(node.Root, recursive: true);
        }
    }
}
