using MemoryCluster.Compute.Feed;
using MemoryCluster.Compute.Memory;

namespace MemoryCluster.Compute.Tests.Memory;

public sealed class HeldRowTests
{
    // Each read makes new strings; the model keeps one copy of each name.
    private static string Fresh(string value) => new(value.AsSpan());

    private static TripleRow Row(long id, string subject, string predicate, string obj, ObjectKind kind, long? validTo = null) =>
        new(id, Fresh(subject), Fresh(predicate), Fresh(obj), kind, 0.5f, null, 1_000, validTo, null);

    [Fact]
    public void Loaded_rows_keep_their_values_and_share_one_copy_of_each_name()
    {
        var rows = new[]
        {
            Row(1, "alice", "knows", "bob", ObjectKind.Entity),
            Row(2, "bob", "knows", "alice", ObjectKind.Entity),
            Row(3, "alice", "name", "Alice A.", ObjectKind.Literal),
            Row(4, "bob", "name", "Bob B.", ObjectKind.Literal),
        };
        var model = new MemoryModel();
        model.BeginLoad();
        foreach (var row in rows)
        {
            model.LoadTriple(row);
        }

        model.FinishLoad(new FeedPosition(4, Guid.NewGuid()));
        model.Read(view =>
        {
            var held = rows.Select(r => view.Triple(r.Id)!.Value.Row).ToArray();
            Assert.Equal(rows, held);
            Assert.Same(held[0].Subject, held[1].Object);
            Assert.Same(held[0].Subject, held[2].Subject);
            Assert.Same(held[0].Predicate, held[1].Predicate);
            Assert.Same(held[2].Predicate, held[3].Predicate);
            Assert.Same(view.Graph.NodeName(view.Graph.TryGetNode("bob", out var bob) ? bob : -1), held[1].Subject);
            return 0;
        });
    }

    [Fact]
    public void A_supersession_from_the_feed_closes_the_held_row_and_keeps_its_edge()
    {
        var model = new MemoryModel();
        model.BeginLoad();
        model.LoadTriple(Row(1, "alice", "knows", "bob", ObjectKind.Entity));
        model.FinishLoad(new FeedPosition(1, Guid.NewGuid()));
        var edge = model.Read(view => view.Triple(1)!.Value.Edge);

        var closed = Row(1, "alice", "knows", "bob", ObjectKind.Entity, validTo: 2_000);
        model.Apply([new FeedCommit(2, Guid.NewGuid(), 2_000, [new FeedChange.TripleWritten(closed)])]);
        model.Read(view =>
        {
            var held = view.Triple(1)!.Value;
            Assert.Equal(closed, held.Row);
            Assert.Equal(edge, held.Edge);
            Assert.False(view.Graph.IsVisible(held.Edge, default));
            return 0;
        });
    }
}
