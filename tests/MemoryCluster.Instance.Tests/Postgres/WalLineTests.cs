using MemoryCluster.Instance.Postgres;
using static MemoryCluster.Instance.Tests.Node.NodeFixtures;

namespace MemoryCluster.Instance.Tests.Postgres;

public sealed class WalLineTests
{
    [Fact]
    public void A_history_file_reads_as_the_timelines_ancestors()
    {
        var line = WalLine.FromHistoryFile(new TimelineId(3), "1\t0/3000000\tno recovery target specified\n\n2\t0/5000060\tno recovery target specified\n");
        Assert.Equal(Line(3, (1, 0x3000000), (2, 0x5000060)), line);
        Assert.Equal("3:1@0/3000000,2@0/5000060", line.ToString());
        Assert.Equal(line, WalLine.Parse(line.ToString()));
        Assert.Equal(WalLine.Initial, WalLine.Parse("1"));
    }

    [Theory]
    [InlineData("1\tnot-an-lsn\treason")]
    [InlineData("x\t0/1\treason")]
    [InlineData("just one field")]
    public void A_malformed_history_file_is_refused_naming_the_file_and_line(string text)
    {
        var error = Assert.Throws<FormatException>(() => WalLine.FromHistoryFile(new TimelineId(2), text));
        Assert.Contains("00000002.history line 1", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("2:1@zz")]
    [InlineData("2:1")]
    public void A_malformed_line_is_refused(string text) => Assert.Throws<FormatException>(() => WalLine.Parse(text));

    [Fact]
    public void Wal_on_the_same_line_or_a_prefix_of_it_can_follow()
    {
        var primary = Line(3, (1, 100), (2, 500));
        Assert.Equal((LineRelation.OnLine, new Lsn(700)), primary.Relate(Line(3, (1, 100), (2, 500)), new Lsn(700), new Lsn(700)));
        Assert.Equal((LineRelation.OnLine, new Lsn(450)), primary.Relate(Line(2, (1, 100)), new Lsn(450), new Lsn(450)));
        Assert.Equal((LineRelation.OnLine, new Lsn(90)), primary.Relate(WalLine.Initial, new Lsn(90), new Lsn(90)));
    }

    [Fact]
    public void Wal_replayed_past_where_its_timeline_branched_off_needs_a_rewind_and_counts_only_up_to_the_branch()
    {
        var primary = Line(2, (1, 500));
        Assert.Equal((LineRelation.BeyondFork, new Lsn(500)), primary.Relate(WalLine.Initial, new Lsn(900), new Lsn(800)));

        // Flushed past the branch but replayed before it: PostgreSQL switches timelines there and streams on.
        Assert.Equal((LineRelation.OnLine, new Lsn(500)), primary.Relate(WalLine.Initial, new Lsn(900), new Lsn(400)));
    }

    [Fact]
    public void Another_branch_is_off_the_line_even_with_the_same_timeline_id()
    {
        var primary = Line(3, (1, 100), (2, 500));
        Assert.Equal(LineRelation.OffLine, primary.Relate(Line(3, (1, 100), (2, 400)), new Lsn(450), new Lsn(450)).Relation);
        Assert.Equal(LineRelation.OffLine, primary.Relate(Line(4, (1, 100), (2, 500), (3, 600)), new Lsn(700), new Lsn(700)).Relation);
        Assert.Equal(LineRelation.OffLine, primary.Relate(Line(5, (1, 100)), new Lsn(150), new Lsn(150)).Relation);
        Assert.Equal(LineRelation.OffLine, Line(2, (1, 500)).Relate(Line(3, (1, 500)), new Lsn(600), new Lsn(600)).Relation);
    }

    [Theory]
    [InlineData("0/0", 0UL)]
    [InlineData("0/3000060", 0x3000060UL)]
    [InlineData("1/A", 0x10000000AUL)]
    [InlineData("FFFFFFFF/FFFFFFFF", ulong.MaxValue)]
    public void Lsn_text_round_trips(string text, ulong value)
    {
        Assert.Equal(new Lsn(value), Lsn.Parse(text));
        Assert.Equal(text, new Lsn(value).ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("/1")]
    [InlineData("1/")]
    [InlineData("1-2")]
    [InlineData("G/1")]
    [InlineData("100000000/0")]
    public void A_malformed_lsn_is_refused(string text)
    {
        Assert.False(Lsn.TryParse(text, out _));
        Assert.Contains(text, Assert.Throws<FormatException>(() => Lsn.Parse(text)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bytes_between_positions_never_go_negative()
    {
        Assert.Equal(100, new Lsn(300).BytesAfter(new Lsn(200)));
        Assert.Equal(0, new Lsn(200).BytesAfter(new Lsn(300)));
    }
}
