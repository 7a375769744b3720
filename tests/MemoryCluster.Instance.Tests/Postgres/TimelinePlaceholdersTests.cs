using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Tests.Postgres;

public sealed class TimelinePlaceholdersTests
{
    private static TimelineId T(uint id) => new(id);

    [Fact]
    public void A_placeholder_names_no_parent_timeline_so_postgres_never_switches_to_it()
    {
        // PostgreSQL switches to a newer timeline only when its history contains the current one; an earlier content
        // (the current history, ended at the replay position) was adopted whenever replay had not moved on.
        var line = WalLine.FromHistoryFile(T(3), TimelinePlaceholders.Content);
        Assert.Empty(line.Ancestors);
        Assert.True(TimelinePlaceholders.IsPlaceholder(TimelinePlaceholders.Content));
        Assert.False(TimelinePlaceholders.IsPlaceholder("1\t0/3000060\tno recovery target specified\n"));
        Assert.All(TimelinePlaceholders.Content.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.StartsWith("#", l, StringComparison.Ordinal));
    }

    [Fact]
    public void Placeholders_fill_the_ids_between_the_datas_timeline_and_the_epoch_that_have_no_history()
    {
        Assert.Equal([T(2), T(4)], TimelinePlaceholders.ToWrite(T(1), new Epoch(5), [T(3)]));
        Assert.Empty(TimelinePlaceholders.ToWrite(T(1), new Epoch(2), []));
        Assert.Empty(TimelinePlaceholders.ToWrite(T(4), new Epoch(4), []));
    }

    [Fact]
    public void Placeholders_left_by_a_promotion_that_never_came_are_stale_but_those_leading_to_a_real_timeline_stay()
    {
        // Left above the data's timeline with nothing real above them: PostgreSQL would take the newest as its target.
        Assert.Equal([T(2), T(3)], TimelinePlaceholders.Stale(T(1), new Dictionary<TimelineId, bool> { [T(2)] = true, [T(3)] = true }));

        // Fetched from a primary promoted at epoch 4: they lead to timeline 4.
        Assert.Empty(TimelinePlaceholders.Stale(T(1), new Dictionary<TimelineId, bool> { [T(2)] = true, [T(3)] = true, [T(4)] = false }));

        // Below the data's timeline they are history.
        Assert.Empty(TimelinePlaceholders.Stale(T(4), new Dictionary<TimelineId, bool> { [T(2)] = true, [T(3)] = true, [T(4)] = false }));
        Assert.Equal([T(6)], TimelinePlaceholders.Stale(T(4), new Dictionary<TimelineId, bool> { [T(2)] = true, [T(4)] = false, [T(6)] = true }));
    }
}
