using MemoryCluster.Compute.Feed;

namespace MemoryCluster.Compute.Tests.Feed;

public sealed class FeedContinuityTests
{
    private static readonly Guid A = Guid.Parse("aaaaaaaa-0000-0000-0000-000000000000");
    private static readonly Guid B = Guid.Parse("bbbbbbbb-0000-0000-0000-000000000000");

    [Theory]
    [InlineData(0, 0, null, true)] // nothing applied yet: any history will do
    [InlineData(5, 9, "a", true)] // the commit applied is there: go on
    [InlineData(5, 5, "a", true)]
    [InlineData(5, 9, "b", false)] // another commit took its number
    [InlineData(5, 4, null, false)] // the history ends before it
    [InlineData(5, 9, null, false)] // pruned or lost
    public void A_process_goes_on_only_from_a_commit_the_database_still_has(long seq, long head, string? idThere, bool continues)
    {
        var verdict = FeedContinuity.Check(new FeedPosition(seq, seq == 0 ? Guid.Empty : A), head, idThere switch { "a" => A, "b" => B, _ => null });
        Assert.Equal(continues, verdict is FeedVerdict.Continues);
    }
}
