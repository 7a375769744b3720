using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;

namespace MemoryCluster.Raft;

/// <summary>Raised when stored Raft data is damaged anywhere but a torn tail; the node must not start.</summary>
public sealed class RaftStorageCorruptException(string file, long offset, string reason)
    : IOException($"Raft storage is corrupt in {file} at offset {offset}: {reason}. Refusing to start.")
{
    public string File { get; } = file;

    public long Offset { get; } = offset;
}

/// <summary>Options of <see cref="FileRaftStorage"/>.</summary>
public sealed record FileRaftStorageOptions
{
    public required string Directory { get; init; }

    /// <summary>A new segment is started once the active one passes this size.</summary>
    public long SegmentBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>Receives messages with their level, e.g. a truncated torn tail (a warning). Never receives entry contents.</summary>
    public Action<RaftLogLevel, string>? Log { get; init; }
}

/// <summary>
/// Append-only, segmented, CRC-checked storage. Every record is
/// <c>[u32 length][u32 crc32c(payload)][payload]</c>; the payload is a hard state, a batch of entries
/// (replacing stored entries from its first index on) or a snapshot marker. Every call fsyncs before it
/// returns. On start, a torn record at the very end of the last segment (a crash mid-write) is truncated
/// and logged; any other damage refuses to start with the file and offset.
/// </summary>
public sealed class FileRaftStorage : IRaftStorage
{
    private const byte HardStateRecord = 1;
    private const byte EntriesRecord = 2;
    private const byte SnapshotRecord = 3;
    private const int HeaderBytes = 8;
    private const int MaxRecordBytes = 256 * 1024 * 1024;
    private const string SnapshotFile = "snapshot.bin";

    private readonly FileRaftStorageOptions _options;
    private readonly List<Segment> _segments = [];
    private FileStream? _active;
    private HardState _hardState;
    private LogIndex _lastIndex;
    private bool _loaded;

    public FileRaftStorage(FileRaftStorageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        System.IO.Directory.CreateDirectory(options.Directory);
    }

    /// <summary>How many torn tails were truncated when this storage was loaded.</summary>
    public int TornTailsTruncated { get; private set; }

    public PersistentState Load()
    {
        if (_loaded)
        {
            throw new InvalidOperationException("Load may be called once.");
        }

        _loaded = true;
        foreach (var tmp in System.IO.Directory.GetFiles(_options.Directory, "*.tmp"))
        {
            File.Delete(tmp);
        }

        var snapshot = ReadSnapshotFile();
        var entries = new List<Entry>();
        var hardState = HardState.Empty;
        var files = System.IO.Directory.GetFiles(_options.Directory, "wal-*.log").Order(StringComparer.Ordinal).ToList();
        for (var f = 0; f < files.Count; f++)
        {
            var segment = new Segment(files[f], SequenceOf(files[f]));
            _segments.Add(segment);
            ReadSegment(segment, isLast: f == files.Count - 1, entries, ref hardState);
        }

        var snapshotIndex = snapshot?.Index ?? LogIndex.Zero;
        entries.RemoveAll(e => e.Index <= snapshotIndex);
        if (entries.Count > 0 && entries[0].Index != snapshotIndex.Next())
        {
            throw new RaftStorageCorruptException(_options.Directory, 0, $"log starts at {entries[0].Index} but the snapshot ends at {snapshotIndex}");
        }

        _hardState = hardState;
        _lastIndex = entries.Count > 0 ? entries[^1].Index : snapshotIndex;
        OpenActive();
        return new PersistentState(hardState, snapshot, entries);
    }

    public void Save(HardState? hardState, IReadOnlyList<Entry> entries, Snapshot? snapshot)
    {
        ArgumentNullException.ThrowIfNull(entries);
        EnsureLoaded();
        var buffer = new BinaryBuffer();
        if (snapshot is not null)
        {
            WriteSnapshotFile(snapshot);
            var payload = new BinaryBuffer();
            payload.U8(SnapshotRecord);
            payload.U64(snapshot.Index.Value);
            payload.U64(snapshot.Term.Value);
            AppendRecord(buffer, payload.Span);
            _lastIndex = snapshot.Index;
        }

        if (entries.Count > 0)
        {
            var payload = new BinaryBuffer();
            payload.U8(EntriesRecord);
            payload.U32((uint)entries.Count);
            foreach (var e in entries)
            {
                ConfigCodec.Write(payload, e);
            }

            AppendRecord(buffer, payload.Span);
            _lastIndex = entries[^1].Index;
        }

        if (hardState is { } hs)
        {
            AppendRecord(buffer, HardStatePayload(hs));
            _hardState = hs;
        }

        if (buffer.Length == 0)
        {
            return;
        }

        var active = _segments[^1];
        _active!.Write(buffer.Span);
        _active.Flush(flushToDisk: true);
        active.MaxIndex = LogIndex.Max(active.MaxIndex, _lastIndex);
        if (_active.Length >= _options.SegmentBytes)
        {
            Roll();
        }
    }

    public void Compact(Snapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        EnsureLoaded();
        WriteSnapshotFile(snapshot);

        // Forget whole segments whose entries the snapshot covers; the active one always stays, and every
        // segment starts with the hard state of its time, so the newest hard state is never lost.
        Roll();
        for (var i = 0; i < _segments.Count - 1;)
        {
            if (_segments[i].MaxIndex <= snapshot.Index)
            {
                File.Delete(_segments[i].Path);
                _segments.RemoveAt(i);
            }
            else
            {
                break;
            }
        }
    }

    public void Dispose()
    {
        _active?.Dispose();
        _active = null;
    }

    // ---------------------------------------------------------------- writing

    private void EnsureLoaded()
    {
        if (!_loaded || _active is null)
        {
            throw new InvalidOperationException("Call Load first.");
        }
    }

    private static byte[] HardStatePayload(HardState hs)
    {
        var payload = new BinaryBuffer();
        payload.U8(HardStateRecord);
        ConfigCodec.Write(payload, hs);
        return payload.ToArray();
    }

    private static void AppendRecord(BinaryBuffer buffer, ReadOnlySpan<byte> payload)
    {
        buffer.U32((uint)payload.Length);
        buffer.U32(Crc32C(payload));
        buffer.Raw(payload);
    }

    private void OpenActive()
    {
        if (_segments.Count == 0)
        {
            Roll();
            return;
        }

        _active = new FileStream(_segments[^1].Path, FileMode.Append, FileAccess.Write, FileShare.Read);
    }

    private void Roll()
    {
        _active?.Dispose();
        var sequence = _segments.Count == 0 ? 1 : _segments[^1].Sequence + 1;
        var path = Path.Combine(_options.Directory, string.Create(CultureInfo.InvariantCulture, $"wal-{sequence:D10}.log"));
        _active = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        _segments.Add(new Segment(path, sequence) { MaxIndex = LogIndex.Zero });
        var buffer = new BinaryBuffer();
        AppendRecord(buffer, HardStatePayload(_hardState));
        _active.Write(buffer.Span);
        _active.Flush(flushToDisk: true);
    }

    private void WriteSnapshotFile(Snapshot snapshot)
    {
        var payload = new BinaryBuffer();
        ConfigCodec.Write(payload, snapshot);
        var record = new BinaryBuffer();
        AppendRecord(record, payload.Span);
        var path = Path.Combine(_options.Directory, SnapshotFile);
        var tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            f.Write(record.Span);
            f.Flush(flushToDisk: true);
        }

        File.Move(tmp, path, overwrite: true);
    }

    // ---------------------------------------------------------------- reading

    private Snapshot? ReadSnapshotFile()
    {
        var path = Path.Combine(_options.Directory, SnapshotFile);
        if (!File.Exists(path))
        {
            return null;
        }

        var data = File.ReadAllBytes(path);
        if (data.Length < HeaderBytes)
        {
            throw new RaftStorageCorruptException(path, 0, "snapshot file too short");
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(data);
        var crc = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(4));
        if (length != data.Length - HeaderBytes || Crc32C(data.AsSpan(HeaderBytes)) != crc)
        {
            throw new RaftStorageCorruptException(path, 0, "snapshot checksum mismatch");
        }

        try
        {
            var c = new BinaryCursor(data.AsSpan(HeaderBytes));
            var snapshot = ConfigCodec.ReadSnapshot(ref c);
            c.ExpectEnd();
            return snapshot;
        }
        catch (FormatException e)
        {
            throw new RaftStorageCorruptException(path, HeaderBytes, e.Message);
        }
    }

    private void ReadSegment(Segment segment, bool isLast, List<Entry> entries, ref HardState hardState)
    {
        var data = File.ReadAllBytes(segment.Path);
        long offset = 0;
        while (offset < data.Length)
        {
            var problem = TryReadRecord(data, offset, out var payload, out var next);
            if (problem is not null)
            {
                // IMPORTANT: only a damaged LAST record of the LAST segment is a torn write. It was never
                // acknowledged (fsync had not returned), so dropping it loses nothing promised to anyone.
                // A damaged record followed by any intact record is corruption, not a torn write.
                var tornTail = isLast && !HasIntactRecordAfter(data, offset + 1);
                if (!tornTail)
                {
                    throw new RaftStorageCorruptException(segment.Path, offset, problem);
                }

                _options.Log?.Invoke(RaftLogLevel.Warning, $"Truncating torn tail of {segment.Path} at offset {offset} ({data.Length - offset} bytes): {problem}.");
                using (var f = new FileStream(segment.Path, FileMode.Open, FileAccess.Write))
                {
                    f.SetLength(offset);
                    f.Flush(flushToDisk: true);
                }

                TornTailsTruncated++;
                return;
            }

            try
            {
                Replay(payload, entries, ref hardState, segment);
            }
            catch (FormatException e)
            {
                throw new RaftStorageCorruptException(segment.Path, offset, e.Message);
            }

            offset = next;
        }
    }

    private static bool HasIntactRecordAfter(byte[] data, long from)
    {
        for (var p = from; p + HeaderBytes < data.Length; p++)
        {
            if (TryReadRecord(data, p, out _, out _) is null)
            {
                return true;
            }
        }

        return false;
    }

    private static string? TryReadRecord(byte[] data, long offset, out ReadOnlySpan<byte> payload, out long next)
    {
        payload = default;
        next = data.Length;
        if (data.Length - offset < HeaderBytes)
        {
            return "incomplete record header";
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan((int)offset));
        var crc = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan((int)offset + 4));
        if (length == 0 || length > MaxRecordBytes)
        {
            return $"invalid record length {length}";
        }

        if (data.Length - offset - HeaderBytes < length)
        {
            return "record runs past the end of the file";
        }

        next = offset + HeaderBytes + length;
        payload = data.AsSpan((int)offset + HeaderBytes, (int)length);
        return Crc32C(payload) != crc ? "checksum mismatch" : null;
    }

    private static void Replay(ReadOnlySpan<byte> payload, List<Entry> entries, ref HardState hardState, Segment segment)
    {
        var c = new BinaryCursor(payload);
        switch (c.U8())
        {
            case HardStateRecord:
                hardState = ConfigCodec.ReadHardState(ref c);
                break;
            case EntriesRecord:
                {
                    var count = ConfigCodec.Count(ref c);
                    for (var i = 0; i < count; i++)
                    {
                        var e = ConfigCodec.ReadEntry(ref c);
                        if (entries.Count > 0)
                        {
                            var at = entries.FindIndex(x => x.Index >= e.Index);
                            if (at >= 0)
                            {
                                entries.RemoveRange(at, entries.Count - at);
                            }
                            else if (e.Index != entries[^1].Index.Next())
                            {
                                throw new FormatException($"entry {e.Index} leaves a gap after {entries[^1].Index}");
                            }
                        }

                        entries.Add(e);
                        segment.MaxIndex = LogIndex.Max(segment.MaxIndex, e.Index);
                    }

                    break;
                }

            case SnapshotRecord:
                {
                    var index = new LogIndex(c.U64());
                    _ = c.U64();
                    entries.Clear();
                    segment.MaxIndex = LogIndex.Max(segment.MaxIndex, index);
                    break;
                }

            default:
                throw new FormatException("unknown record type");
        }

        c.ExpectEnd();
    }

    private static long SequenceOf(string path)
    {
        var name = Path.GetFileNameWithoutExtension(path);
        return long.TryParse(name.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out var s)
            ? s
            : throw new RaftStorageCorruptException(path, 0, "unexpected segment name");
    }

    /// <summary>CRC-32C (Castagnoli), hardware-accelerated where the CPU has it.</summary>
    internal static uint Crc32C(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }

        foreach (var b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return ~crc;
    }

    private sealed class Segment(string path, long sequence)
    {
        public string Path { get; } = path;

        public long Sequence { get; } = sequence;

        public LogIndex MaxIndex { get; set; }
    }
}
