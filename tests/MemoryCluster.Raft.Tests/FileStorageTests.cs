using FsCheck;
using FsCheck.Fluent;

namespace MemoryCluster.Raft.Tests;

public sealed class FileStorageTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "raft-storage-" + Guid.NewGuid().ToString("N"));
    private readonly List<(RaftLogLevel Level, string Text)> _log = [];

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private FileRaftStorage Open(long segmentBytes = 4 * 1024 * 1024) =>
        new(new FileRaftStorageOptions { Directory = _dir, SegmentBytes = segmentBytes, Log = (level, text) => _log.Add((level, text)) });

    private static Entry E(ulong index, ulong term, string data = "x") =>
        new(new Term(term), new LogIndex(index), EntryType.Command, System.Text.Encoding.UTF8.GetBytes(data + index));

    private static string Describe(PersistentState s) =>
        $"{s.HardState} snap={s.Snapshot?.Index} [{string.Join(",", s.Entries.Select(e => $"{e}/{Convert.ToHexString(e.Data)}"))}]";

    [Fact]
    public void Saved_state_is_read_back_after_reopening()
    {
        using (var s = Open())
        {
            Assert.Empty(s.Load().Entries);
            s.Save(new HardState(new Term(2), new NodeId(3), new LogIndex(1)), [E(1, 1), E(2, 2)], null);
            s.Save(null, [E(3, 2)], null);
        }

        using var again = Open();
        var state = again.Load();
        Assert.Equal(new HardState(new Term(2), new NodeId(3), new LogIndex(1)), state.HardState);
        Assert.Equal([1UL, 2, 3], state.Entries.Select(e => e.Index.Value));
    }

    [Fact]
    public void Entries_from_a_new_leader_replace_the_conflicting_suffix()
    {
        using (var s = Open())
        {
            s.Load();
            s.Save(null, [E(1, 1), E(2, 1), E(3, 1)], null);
            s.Save(new HardState(new Term(3), NodeId.None, LogIndex.Zero), [E(2, 3, "new")], null);
        }

        using var again = Open();
        var state = again.Load();
        Assert.Equal(["1@1:Command", "2@3:Command"], state.Entries.Select(e => e.ToString()));
    }

    [Fact]
    public void Torn_tail_is_truncated_and_logged_and_earlier_records_survive()
    {
        using (var s = Open())
        {
            s.Load();
            s.Save(new HardState(new Term(1), new NodeId(1), LogIndex.Zero), [E(1, 1), E(2, 1)], null);
            s.Save(null, [E(3, 1)], null);
        }

        var segment = Directory.GetFiles(_dir, "wal-*.log").Single();
        var full = File.ReadAllBytes(segment);

        // Crash in the middle of the last record: keep only part of it.
        File.WriteAllBytes(segment, full.AsSpan(0, full.Length - 5).ToArray());
        using (var again = Open())
        {
            var state = again.Load();
            Assert.Equal([1UL, 2], state.Entries.Select(e => e.Index.Value));
            Assert.Equal(new NodeId(1), state.HardState.Vote);
            Assert.Equal(1, again.TornTailsTruncated);
        }

        Assert.Contains(_log, w => w.Level == RaftLogLevel.Warning && w.Text.Contains("torn tail", StringComparison.Ordinal) && w.Text.Contains(segment, StringComparison.Ordinal));

        // The file was cut back to the last intact record, so the node can append after it.
        using var third = Open();
        third.Load();
        third.Save(null, [E(3, 2)], null);
    }

    [Fact]
    public void Corruption_before_the_tail_refuses_to_start_and_names_file_and_offset()
    {
        using (var s = Open())
        {
            s.Load();
            s.Save(new HardState(new Term(1), new NodeId(1), LogIndex.Zero), [E(1, 1)], null);
            s.Save(null, [E(2, 1)], null);
            s.Save(null, [E(3, 1)], null);
        }

        var segment = Directory.GetFiles(_dir, "wal-*.log").Single();
        var bytes = File.ReadAllBytes(segment);
        bytes[40] ^= 0xFF;
        File.WriteAllBytes(segment, bytes);
        using var again = Open();
        var error = Assert.Throws<RaftStorageCorruptException>(() => again.Load());
        Assert.Equal(segment, error.File);
        Assert.Contains(segment, error.Message, StringComparison.Ordinal);
        Assert.True(error.Offset < 40);
        Assert.Equal(bytes.Length, new FileInfo(segment).Length);
    }

    [Fact]
    public void Compaction_keeps_the_snapshot_and_later_entries_and_deletes_old_segments()
    {
        using (var s = Open(segmentBytes: 200))
        {
            s.Load();
            for (ulong i = 1; i <= 40; i++)
            {
                s.Save(new HardState(new Term(1), new NodeId(1), new LogIndex(i)), [E(i, 1)], null);
            }

            var before = Directory.GetFiles(_dir, "wal-*.log").Length;
            Assert.True(before > 5);
            s.Compact(new Snapshot(new LogIndex(30), new Term(1), ClusterConfig.Empty, [1, 2, 3]));
            Assert.True(Directory.GetFiles(_dir, "wal-*.log").Length < before);
        }

        using var again = Open(segmentBytes: 200);
        var state = again.Load();
        Assert.Equal(new LogIndex(30), state.Snapshot!.Index);
        Assert.Equal([1, 2, 3], state.Snapshot.Data);
        Assert.Equal(Enumerable.Range(31, 10).Select(i => (ulong)i), state.Entries.Select(e => e.Index.Value));
        Assert.Equal(new LogIndex(40), state.HardState.Commit);
    }

    [Fact]
    public void Snapshot_from_the_leader_replaces_the_whole_log()
    {
        using (var s = Open())
        {
            s.Load();
            s.Save(null, [E(1, 1), E(2, 1)], null);
            s.Save(new HardState(new Term(4), NodeId.None, new LogIndex(50)), [], new Snapshot(new LogIndex(50), new Term(3), ClusterConfig.Empty, [7]));
            s.Save(null, [E(51, 4)], null);
        }

        using var again = Open();
        var state = again.Load();
        Assert.Equal(new LogIndex(50), state.Snapshot!.Index);
        Assert.Equal([51UL], state.Entries.Select(e => e.Index.Value));
    }

    [Fact]
    public void Damaged_snapshot_file_refuses_to_start()
    {
        using (var s = Open())
        {
            s.Load();
            s.Compact(new Snapshot(LogIndex.Zero.Next(), new Term(1), ClusterConfig.Empty, [1, 2, 3, 4]));
        }

        var path = Path.Combine(_dir, "snapshot.bin");
        var bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 1;
        File.WriteAllBytes(path, bytes);
        using var again = Open();
        Assert.Throws<RaftStorageCorruptException>(() => again.Load());
    }

    [FsCheck.Xunit.Property(MaxTest = 100)]
    public Property File_storage_agrees_with_the_in_memory_model_after_any_crash_point(PositiveInt[] steps, NonNegativeInt cut)
    {
        var dir = Path.Combine(Path.GetTempPath(), "raft-storage-prop-" + Guid.NewGuid().ToString("N"));
        try
        {
            var model = new MemoryRaftStorage();
            var lengths = new List<long>();
            var models = new List<PersistentState>();
            using (var file = new FileRaftStorage(new FileRaftStorageOptions { Directory = dir, SegmentBytes = 1 << 20 }))
            {
                file.Load();
                var last = 0UL;
                ulong term = 1;
                foreach (var step in (steps ?? []).Take(15))
                {
                    // Append 1-3 entries, sometimes replacing a suffix first.
                    var from = step.Get % 4 == 0 && last > 1 ? last - 1 : last + 1;
                    term += step.Get % 4 == 0 ? 1UL : 0UL;
                    var entries = Enumerable.Range(0, 1 + (step.Get % 3)).Select(i => E(from + (ulong)i, term)).ToArray();
                    var hs = new HardState(new Term(term), new NodeId((ulong)(step.Get % 5)), LogIndex.Zero);
                    file.Save(hs, entries, null);
                    model.Save(hs, entries, null);
                    last = entries[^1].Index.Value;
                    lengths.Add(new FileInfo(Directory.GetFiles(dir, "wal-*.log").Single()).Length);
                    models.Add(model.Load());
                }
            }

            if (lengths.Count == 0)
            {
                return true.ToProperty();
            }

            // Crash somewhere inside the last write: everything fsynced before it must be read back.
            var segment = Directory.GetFiles(dir, "wal-*.log").Single();
            var start = lengths.Count > 1 ? lengths[^2] : 0;
            var keep = start + (cut.Get % (lengths[^1] - start));
            using (var f = new FileStream(segment, FileMode.Open))
            {
                f.SetLength(keep);
            }

            using var reopened = new FileRaftStorage(new FileRaftStorageOptions { Directory = dir });
            var got = Describe(reopened.Load());

            // A write is two records (entries, then hard state): the crash may keep the first one whole.
            var before = lengths.Count > 1 ? models[^2] : PersistentState.Empty;
            var allowed = new[] { Describe(before), Describe(models[^1] with { HardState = before.HardState }) };
            return allowed.Contains(got).Label($"got {got}, expected one of {string.Join(" | ", allowed)}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
