using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.E2e.Tests;

public sealed class StatusChecksTests
{
    private static readonly WalLine One = WalLine.Initial;
    private static readonly WalLine Two = WalLine.Parse("2:1@0/3000000");

    [Fact]
    public void A_member_that_may_write_with_its_watchdog_disarmed_is_reported_and_an_armed_one_is_not()
    {
        StatusSample[] samples =
        [
            Sample("mc-1", 10, InstanceRole.Primary, watchdog: "armed"),
            Sample("mc-2", 10, InstanceRole.Replica, watchdog: "disarmed"),
            Sample("mc-2", 20, InstanceRole.Replica, watchdog: "disarmed", mayWrite: true),
            Sample("mc-3", 20, InstanceRole.Primary, watchdog: null),
        ];

        var found = StatusChecks.UnarmedWriters(samples, origin: 0);

        Assert.Contains("mc-2", Assert.Single(found), StringComparison.Ordinal);
    }

    [Fact]
    public void A_disarmed_report_between_two_writable_answers_of_one_session_is_reported_but_not_across_sessions()
    {
        SessionAnswer[] answers =
        [
            new("mc-1", 1, 0, 10, true),
            new("mc-1", 1, 100, 110, true),
            new("mc-1", 2, 200, 210, true),
            new("mc-1", 3, 300, 310, true),
        ];
        StatusSample[] samples =
        [
            Sample("mc-1", 50, InstanceRole.Replica, watchdog: "disarmed", asked: 40),
            Sample("mc-1", 250, InstanceRole.Stopped, watchdog: "disarmed", asked: 240),
        ];

        var found = StatusChecks.UnarmedWhileSessionWritable(answers, samples, origin: 0);

        Assert.Contains("monitor session 1", Assert.Single(found), StringComparison.Ordinal);
    }

    [Fact]
    public void A_settled_position_that_goes_back_on_one_timeline_is_reported_unless_a_rewind_came_between()
    {
        StatusSample[] samples =
        [
            Sample("mc-1", 10, InstanceRole.Replica, flush: 0x3000100),
            Sample("mc-1", 20, InstanceRole.Replica, flush: 0x3000000),
            Sample("mc-2", 10, InstanceRole.Replica, flush: 0x3000100),
            Sample("mc-2", 20, InstanceRole.Stopped, flush: 0x3000100, follow: FollowState.Rewinding),
            Sample("mc-2", 30, InstanceRole.Replica, flush: 0x3000000),
            Sample("mc-3", 10, InstanceRole.Replica, flush: 0x3000100),
            Sample("mc-3", 20, InstanceRole.Replica, flush: 0x2000000, settled: false),
            Sample("mc-3", 30, InstanceRole.Primary, flush: 0x3000000, line: Two),
        ];

        var found = StatusChecks.PositionsBackwards(samples, origin: 0);

        var violation = Assert.Single(found);
        Assert.StartsWith("mc-1's settled flushLsn went back on timeline 1: 0/3000100", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void A_replica_that_reports_less_than_it_acknowledged_to_the_primary_is_reported_unless_rewound_since()
    {
        StatusSample[] samples =
        [
            Sample("mc-1", 10, InstanceRole.Primary, standbys: [("mc-2", new Lsn(0x3000200)), ("mc-3", new Lsn(0x3000200))]),
            Sample("mc-2", 5, InstanceRole.Replica, flush: 0x3000100),
            Sample("mc-2", 30, InstanceRole.Replica, flush: 0x3000100),
            Sample("mc-3", 30, InstanceRole.Replica, flush: 0x3000200),
            Sample("mc-3", 40, InstanceRole.Stopped, follow: FollowState.Rewinding),
            Sample("mc-1", 50, InstanceRole.Primary, standbys: [("mc-3", new Lsn(0x3000400))], line: Two, epoch: 2),
            Sample("mc-3", 60, InstanceRole.Replica, flush: 0x3000300, line: Two, epoch: 2),
            Sample("mc-3", 70, InstanceRole.Replica, flush: 0x3000100, epoch: 1),
        ];

        var found = StatusChecks.UnderReported(samples, origin: 0);

        // mc-2 at 30 (read after the primary's report at 10); not at 5 (read before it). mc-3 at 60 reports less
        // than the 0/3000400 of the primary's report at 50: that one too. mc-3 at 70: epoch 1 acks came before its rewind.
        Assert.Equal(2, found.Count);
        Assert.StartsWith("mc-2 reported a settled flushLsn 0/3000100", found[0], StringComparison.Ordinal);
        Assert.StartsWith("mc-3 reported a settled flushLsn 0/3000300", found[1], StringComparison.Ordinal);
    }

    [Fact]
    public void A_state_query_counts_from_its_start_for_the_replica_and_up_to_its_end_for_the_primary()
    {
        var ms = System.Diagnostics.Stopwatch.Frequency / 1000;
        StatusSample[] samples =
        [
            // The primary's state query began at 1000 ms and took 400 ms: it read mc-2's flush by 1400 ms at the latest.
            Sample("mc-1", 1500 * ms, InstanceRole.Primary, standbys: [("mc-2", new Lsn(0x3000200))], ageMs: 500, queryMs: 400),

            // mc-2's query began at 1300 ms (asked at 1500, state 200 ms old): it may have read before the primary did.
            Sample("mc-2", 1600 * ms, InstanceRole.Replica, flush: 0x3000100, asked: 1500 * ms, ageMs: 200),

            // Its next began at 1450 ms, after the primary's read at the latest: it must show 0/3000200.
            Sample("mc-2", 1700 * ms, InstanceRole.Replica, flush: 0x3000100, asked: 1500 * ms, ageMs: 50),
        ];

        var found = StatusChecks.UnderReported(samples, origin: 0);

        var violation = Assert.Single(found);
        Assert.Contains("state 50 ms old", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void An_insert_acknowledged_while_another_member_was_writable_is_reported()
    {
        (string, AckedWrite)[] acked = [("mc-1", new AckedWrite(1, 100, 120, 5432, default)), ("mc-1", new AckedWrite(2, 300, 320, 5432, default))];
        (string, long, long)[] writable = [("mc-1", 90, 130), ("mc-2", 110, 140), ("mc-2", 330, 340)];

        var found = StatusChecks.AckedWhileAnotherWritable(acked, writable, origin: 0);

        Assert.Contains("insert 1 acknowledged by mc-1", Assert.Single(found), StringComparison.Ordinal);
    }

    [Fact]
    public void An_insert_executed_while_another_member_was_writable_by_the_server_clocks_is_definite_or_possible()
    {
        var t0 = new DateTime(2026, 12, 3, 12, 0, 0, DateTimeKind.Utc);
        DateTime At(int ms) => t0.AddMilliseconds(ms);
        AckedWrite Write(long id, int ms) => new(id, SentAt: 0, AckedAt: 4_000_000_000, ServerPort: 5432, ServerAt: At(ms));
        ServerAnswer[] answers =
        [
            // mc-1, the old primary: writable until 1000 ms, then fenced.
            new("mc-1", At(900), true), new("mc-1", At(1000), true), new("mc-1", At(1050), false), new("mc-1", At(3000), false),

            // mc-2: a replica until its promotion between 2000 and 2040 ms, writable after.
            new("mc-2", At(900), false), new("mc-2", At(2000), false), new("mc-2", At(2040), true), new("mc-2", At(3000), true),

            // mc-3: a replica throughout.
            new("mc-3", At(800), false), new("mc-3", At(3100), false),
        ];
        (string, AckedWrite)[] acked =
        [
            ("mc-1", Write(1, 950)), // before mc-2's promotion: fine
            ("mc-1", Write(2, 1020)), // mc-1's own fence around it says nothing about the others: fine
            ("mc-1", Write(3, 2020)), // while mc-2 was being promoted: order unknown
            ("mc-1", Write(4, 2500)), // mc-2 writable on both sides: two primaries
            ("mc-2", Write(5, 2600)), // the new primary's own writes: fine
            ("mc-2", Write(6, 1010)), // mc-1 writable before, fenced after: order unknown
        ];

        var (definite, possible) = StatusChecks.ExecutedWhileAnotherWritable(acked, answers);

        Assert.Contains("insert 4 executed on mc-1", Assert.Single(definite), StringComparison.Ordinal);
        Assert.Equal(2, possible.Count);
        Assert.Contains(possible, p => p.StartsWith("insert 3 executed on mc-1", StringComparison.Ordinal));
        Assert.Contains(possible, p => p.StartsWith("insert 6 executed on mc-2", StringComparison.Ordinal));
    }

    [Fact]
    public void No_answer_on_one_side_of_an_insert_proves_nothing_about_that_member()
    {
        var t0 = new DateTime(2026, 12, 3, 12, 0, 0, DateTimeKind.Utc);
        ServerAnswer[] answers = [new("mc-2", t0.AddSeconds(1), true), new("mc-2", t0.AddSeconds(2), true)];
        (string, AckedWrite)[] acked = [("mc-1", new AckedWrite(1, 0, 1, 5432, t0.AddSeconds(0.5))), ("mc-1", new AckedWrite(2, 0, 1, 5432, t0.AddSeconds(3)))];

        var (definite, possible) = StatusChecks.ExecutedWhileAnotherWritable(acked, answers);

        Assert.Empty(definite);
        Assert.Empty(possible);
    }

    [Fact]
    public void Epoch_changes_count_from_the_highest_epoch_seen_before_the_window()
    {
        StatusSample[] samples =
        [
            Sample("mc-1", 10, InstanceRole.Primary, epoch: 3),
            Sample("mc-2", 110, InstanceRole.Replica, epoch: 3),
            Sample("mc-2", 120, InstanceRole.Primary, epoch: 5),
            Sample("mc-2", 300, InstanceRole.Primary, epoch: 6),
        ];

        Assert.Equal(2, StatusChecks.EpochChanges(samples, from: 100, to: 200));
        Assert.Equal(0, StatusChecks.EpochChanges(samples, from: 400, to: 500));
    }

    private static StatusSample Sample(
        string member,
        long at,
        InstanceRole role,
        string? watchdog = "armed",
        bool mayWrite = false,
        long asked = -1,
        ulong flush = 0x3000000,
        bool settled = true,
        FollowState follow = FollowState.Streaming,
        WalLine? line = null,
        ulong epoch = 1,
        (string, Lsn)[]? standbys = null,
        long ageMs = 0,
        long queryMs = 0) =>
        new(member, asked < 0 ? at - 5 : asked, at, role, true, role != InstanceRole.Stopped, mayWrite, watchdog, epoch, "mc-1", line ?? One, new Lsn(flush), settled, follow, false, "follower", ageMs, queryMs, standbys ?? []);
}
