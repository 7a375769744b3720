namespace MemoryCluster.Compute.Feed;

/// <summary>What the database's history says about a position a process applied.</summary>
public abstract record FeedVerdict
{
    private FeedVerdict()
    {
    }

    /// <summary>The position is in the database's history: go on reading after it.</summary>
    public sealed record Continues : FeedVerdict;

    /// <summary>It is not (a failover lost commits this process applied, or the feed was reset): load everything again.</summary>
    public sealed record Diverged(string Reason) : FeedVerdict;
}

/// <summary>Decides whether a process may go on from its position after (re)connecting (pure).</summary>
public static class FeedContinuity
{
    /// <param name="applied">The last commit the process applied.</param>
    /// <param name="head">The database's last commit number.</param>
    /// <param name="idAtApplied">The id the database has for commit <c>applied.Seq</c>; null when it has none.</param>
    public static FeedVerdict Check(FeedPosition applied, long head, Guid? idAtApplied)
    {
        if (applied.Seq == 0)
        {
            return new FeedVerdict.Continues();
        }

        if (head < applied.Seq)
        {
            return new FeedVerdict.Diverged($"the database's feed ends at commit {head}, before commit {applied.Seq} that this process applied: those commits were lost (a failover in asynchronous mode, or a restore)");
        }

        if (idAtApplied is not { } id)
        {
            return new FeedVerdict.Diverged($"commit {applied.Seq} is no longer in the database's feed (pruned, or lost): this process cannot tell what changed since");
        }

        return id == applied.CommitId
            ? new FeedVerdict.Continues()
            : new FeedVerdict.Diverged($"commit {applied.Seq} in the database is another commit than the one this process applied ({id.ToString()[..8]} there, {applied.CommitId.ToString()[..8]} here): a failover lost commits and new ones took their numbers");
    }
}
