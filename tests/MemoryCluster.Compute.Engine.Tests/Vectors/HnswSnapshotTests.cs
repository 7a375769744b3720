using FsCheck.Xunit;
using MemoryCluster.Compute.Engine.Vectors;

namespace MemoryCluster.Compute.Engine.Tests.Vectors;

public sealed class HnswSnapshotTests
{
    [Property(MaxTest = 20)]
    public void A_snapshot_round_trip_keeps_every_answer(int seed)
    {
        var random = new Random(seed);
        var count = random.Next(1, 300);
        var data = VectorData.Random(seed, count, 7);
        var index = VectorData.Build(data, DistanceMetric.Cosine);
        for (var i = 0; i < count / 5; i++)
        {
            index.Delete(random.Next(count));
        }

        var bytes = HnswIndexTests.Snapshot(index);
        var loaded = HnswIndex.Load(new MemoryStream(bytes), index.Options);
        Assert.Equal(index.Count, loaded.Count);
        Assert.Equal(index.NodeCount, loaded.NodeCount);
        Assert.Equal(bytes, HnswIndexTests.Snapshot(loaded));
        foreach (var query in VectorData.Random(seed + 1, 5, 7))
        {
            Assert.Equal(index.Search(query, 5, ef: 20), loaded.Search(query, 5, ef: 20));
        }
    }

    [Fact]
    public void Inserts_after_a_load_continue_exactly_as_without_the_restart()
    {
        var data = VectorData.Random(8, 300, 6);
        var straight = VectorData.Build(data);
        var half = VectorData.Build(data[..150]);
        var resumed = HnswIndex.Load(new MemoryStream(HnswIndexTests.Snapshot(half)));
        for (var i = 150; i < 300; i++)
        {
            resumed.Add(i, data[i]);
        }

        Assert.Equal(HnswIndexTests.Snapshot(straight), HnswIndexTests.Snapshot(resumed));
    }

    [Fact]
    public void A_flipped_byte_is_refused_as_corrupt()
    {
        var bytes = HnswIndexTests.Snapshot(VectorData.Build(VectorData.Random(1, 100, 4)));
        bytes[bytes.Length / 2] ^= 0x40;
        var error = Assert.Throws<SnapshotException>(() => HnswIndex.Load(new MemoryStream(bytes)));
        Assert.Contains("corrupt", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_snapshot_is_refused()
    {
        var bytes = HnswIndexTests.Snapshot(VectorData.Build(VectorData.Random(1, 100, 4)));
        var error = Assert.Throws<SnapshotException>(() => HnswIndex.Load(new MemoryStream(bytes[..(bytes.Length - 20)])));
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Another_format_version_is_refused_with_both_versions_named()
    {
        var bytes = HnswIndexTests.Snapshot(VectorData.Build(VectorData.Random(1, 10, 4)));
        bytes[8] = 9;
        var error = Assert.Throws<SnapshotException>(() => HnswIndex.Load(new MemoryStream(bytes)));
        Assert.Contains("version 9", error.Message, StringComparison.Ordinal);
        Assert.Contains($"version {HnswIndex.SnapshotVersion}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_snapshot_of_other_dimensions_or_metric_is_refused()
    {
        var bytes = HnswIndexTests.Snapshot(VectorData.Build(VectorData.Random(1, 10, 4)));
        var dims = Assert.Throws<SnapshotException>(() => HnswIndex.Load(new MemoryStream(bytes), new HnswOptions { Dimensions = 5, M = 8 }));
        Assert.Contains("dimensions=4", dims.Message, StringComparison.Ordinal);
        var metric = Assert.Throws<SnapshotException>(() => HnswIndex.Load(new MemoryStream(bytes), new HnswOptions { Dimensions = 4, M = 8, Metric = DistanceMetric.Cosine }));
        Assert.Contains("metric=L2", metric.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Something_that_is_not_a_snapshot_is_refused()
    {
        var error = Assert.Throws<SnapshotException>(() => HnswIndex.Load(new MemoryStream(new byte[200])));
        Assert.Contains("magic", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_index_round_trips()
    {
        var index = new HnswIndex(new HnswOptions { Dimensions = 3 });
        var loaded = HnswIndex.Load(new MemoryStream(HnswIndexTests.Snapshot(index)));
        Assert.Equal(0, loaded.Count);
        Assert.Empty(loaded.Search([1f, 2f, 3f], 2));
    }
}
