using MemoryCluster.Compute.Feed;
using MemoryCluster.Compute.Memory;

namespace MemoryCluster.Compute.Tests.Feed;

public sealed class ReadYourWritesTests
{
    private static readonly Guid A = Guid.NewGuid();
    private static readonly Guid X = Guid.NewGuid();
    private static readonly Guid Y = Guid.NewGuid();
    private static readonly Guid Other = Guid.NewGuid();

    [Fact]
    public async Task A_write_counts_as_shown_only_when_its_own_commit_was_applied_under_its_number()
    {
        var model = new MemoryModel();
        model.BeginLoad();
        model.FinishLoad(new FeedPosition(5, A));
        model.Apply([Commit(6, X), Commit(7, Y)]);

        Assert.True(model.Shows(new FeedPosition(6, X)));
        Assert.True(model.Shows(new FeedPosition(7, Y)));
        Assert.False(model.Shows(new FeedPosition(8, Other)), "not applied yet");

        // A write on a new primary whose number this process applied from the old history (a failover lost commit
        // 6): not shown until the follower has loaded the new history.
        Assert.False(model.Shows(new FeedPosition(6, Other)));
        Assert.False(await model.WaitForAsync(new FeedPosition(6, Other), TimeSpan.FromMilliseconds(50), CancellationToken.None));

        // Older than the load: the loaded state holds it.
        Assert.True(model.Shows(new FeedPosition(3, Other)));

        // The follower loads the new history (at commit 7 there): the write is shown.
        model.BeginLoad();
        model.FinishLoad(new FeedPosition(7, Other));
        Assert.True(model.Shows(new FeedPosition(6, Other)));
        Assert.True(await model.WaitForAsync(new FeedPosition(7, Other), TimeSpan.FromSeconds(5), CancellationToken.None));
    }

    [Fact]
    public async Task A_waiting_write_returns_as_soon_as_its_commit_is_applied()
    {
        var model = new MemoryModel();
        model.BeginLoad();
        model.FinishLoad(new FeedPosition(1, A));
        var waiting = model.WaitForAsync(new FeedPosition(2, X), TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.False(waiting.IsCompleted);
        model.Apply([Commit(2, X)]);
        Assert.True(await waiting.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    private static FeedCommit Commit(long seq, Guid id) => new(seq, id, 0, []);
}
