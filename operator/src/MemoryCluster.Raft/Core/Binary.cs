using System.Buffers.Binary;
using System.Text;

namespace MemoryCluster.Raft;

/// <summary>
/// A little-endian writer for the wire and disk formats. Public so that a state machine can write its
/// snapshots and commands in the same format (and embed a <see cref="ClusterConfig"/> with <see cref="ConfigCodec"/>).
/// </summary>
public sealed class BinaryBuffer
{
    private byte[] _buffer = new byte[256];

    public int Length { get; private set; }

    public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, Length);

    public byte[] ToArray() => Span.ToArray();

    private Span<byte> Grow(int size)
    {
        if (Length + size > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + size));
        }

        var span = _buffer.AsSpan(Length, size);
        Length += size;
        return span;
    }

    public void U8(byte value) => Grow(1)[0] = value;

    public void U32(uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Grow(4), value);

    public void U64(ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Grow(8), value);

    public void Bool(bool value) => U8(value ? (byte)1 : (byte)0);

    public void Bytes(ReadOnlySpan<byte> value)
    {
        U32((uint)value.Length);
        value.CopyTo(Grow(value.Length));
    }

    public void Raw(ReadOnlySpan<byte> value) => value.CopyTo(Grow(value.Length));

    public void String(string value) => Bytes(Encoding.UTF8.GetBytes(value));
}

/// <summary>The matching reader; every read is bounds-checked and throws <see cref="FormatException"/>.</summary>
public ref struct BinaryCursor(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _offset;

    public readonly bool AtEnd => _offset == _data.Length;

    public readonly int Offset => _offset;

    private ReadOnlySpan<byte> Take(int size)
    {
        if (size < 0 || _offset + size > _data.Length)
        {
            throw new FormatException($"Truncated data at offset {_offset}.");
        }

        var span = _data.Slice(_offset, size);
        _offset += size;
        return span;
    }

    public byte U8() => Take(1)[0];

    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    public bool Bool() => U8() switch
    {
        0 => false,
        1 => true,
        var b => throw new FormatException($"Invalid boolean {b}."),
    };

    public byte[] Bytes()
    {
        var length = U32();
        return length > int.MaxValue ? throw new FormatException("Length too large.") : Take((int)length).ToArray();
    }

    public string String() => Encoding.UTF8.GetString(Bytes());

    public readonly void ExpectEnd()
    {
        if (!AtEnd)
        {
            throw new FormatException($"Unexpected trailing data at offset {_offset}.");
        }
    }
}

/// <summary>
/// Encodes the Raft types: configurations, entries, snapshots, hard state and messages. Only the
/// configuration format (the data of <see cref="EntryType.Config"/> entries) is public, for state machines.
/// </summary>
public static class ConfigCodec
{
    private const int MaxCount = 1 << 20;

    /// <summary>The data of a <see cref="EntryType.Config"/> entry.</summary>
    public static byte[] Encode(ClusterConfig config)
    {
        var b = new BinaryBuffer();
        Write(b, config);
        return b.ToArray();
    }

    /// <summary>Reads the data of a <see cref="EntryType.Config"/> entry.</summary>
    public static ClusterConfig Decode(ReadOnlySpan<byte> data)
    {
        var c = new BinaryCursor(data);
        var config = ReadConfig(ref c);
        c.ExpectEnd();
        return config;
    }

    /// <summary>Writes <paramref name="config"/> where it stands in a larger record (e.g. a state machine's snapshot).</summary>
    public static void Write(BinaryBuffer b, ClusterConfig config)
    {
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(config);
        b.U32((uint)config.Members.Count);
        foreach (var m in config.Members)
        {
            b.U64(m.Id.Value);
            b.String(m.Address);
            b.Bool(m.IsVoter);
        }

        b.U32((uint)config.RetiredIds.Count);
        foreach (var id in config.RetiredIds)
        {
            b.U64(id.Value);
        }
    }

    /// <summary>Reads a configuration written by <see cref="Write(BinaryBuffer, ClusterConfig)"/>.</summary>
    public static ClusterConfig ReadConfig(ref BinaryCursor c)
    {
        var members = new Member[Count(ref c)];
        for (var i = 0; i < members.Length; i++)
        {
            members[i] = new Member(new NodeId(c.U64()), c.String(), c.Bool());
        }

        var retired = new NodeId[Count(ref c)];
        for (var i = 0; i < retired.Length; i++)
        {
            retired[i] = new NodeId(c.U64());
        }

        return new ClusterConfig(members, retired);
    }

    /// <summary>Reads a <c>u32</c> element count, refusing one too large to be real.</summary>
    public static int Count(ref BinaryCursor c)
    {
        var n = c.U32();
        return n > MaxCount ? throw new FormatException($"Count {n} too large.") : (int)n;
    }

    internal static void Write(BinaryBuffer b, Entry e)
    {
        b.U64(e.Term.Value);
        b.U64(e.Index.Value);
        b.U8((byte)e.Type);
        b.Bytes(e.Data);
    }

    internal static Entry ReadEntry(ref BinaryCursor c)
    {
        var term = new Term(c.U64());
        var index = new LogIndex(c.U64());
        var type = (EntryType)c.U8();
        if (type is not (EntryType.Command or EntryType.NoOp or EntryType.Config))
        {
            throw new FormatException($"Unknown entry type {(int)type}.");
        }

        return new Entry(term, index, type, c.Bytes());
    }

    internal static void Write(BinaryBuffer b, Snapshot s)
    {
        b.U64(s.Index.Value);
        b.U64(s.Term.Value);
        Write(b, s.Config);
        b.Bytes(s.Data);
    }

    internal static Snapshot ReadSnapshot(ref BinaryCursor c) =>
        new(new LogIndex(c.U64()), new Term(c.U64()), ReadConfig(ref c), c.Bytes());

    internal static void Write(BinaryBuffer b, HardState h)
    {
        b.U64(h.Term.Value);
        b.U64(h.Vote.Value);
        b.U64(h.Commit.Value);
    }

    internal static HardState ReadHardState(ref BinaryCursor c) =>
        new(new Term(c.U64()), new NodeId(c.U64()), new LogIndex(c.U64()));

    internal static byte[] EncodeMessage(Message m)
    {
        var b = new BinaryBuffer();
        b.U8((byte)m.Type);
        b.U64(m.From.Value);
        b.U64(m.To.Value);
        b.U64(m.Term.Value);
        b.U64(m.LogTerm.Value);
        b.U64(m.Index.Value);
        b.U64(m.Commit.Value);
        b.Bool(m.Reject);
        b.U64(m.RejectHint.Value);
        b.U64(m.Context);
        b.U32((uint)m.EntriesOrEmpty.Count);
        foreach (var e in m.EntriesOrEmpty)
        {
            Write(b, e);
        }

        b.Bool(m.Snapshot is not null);
        if (m.Snapshot is not null)
        {
            Write(b, m.Snapshot);
        }

        return b.ToArray();
    }

    internal static Message DecodeMessage(ReadOnlySpan<byte> data)
    {
        var c = new BinaryCursor(data);
        var type = (MessageType)c.U8();
        if (type is < MessageType.PreVote or > MessageType.ReadIndexResponse)
        {
            throw new FormatException($"Unknown message type {(int)type}.");
        }

        var from = new NodeId(c.U64());
        var to = new NodeId(c.U64());
        var term = new Term(c.U64());
        var logTerm = new Term(c.U64());
        var index = new LogIndex(c.U64());
        var commit = new LogIndex(c.U64());
        var reject = c.Bool();
        var hint = new LogIndex(c.U64());
        var context = c.U64();
        var entries = new Entry[Count(ref c)];
        for (var i = 0; i < entries.Length; i++)
        {
            entries[i] = ReadEntry(ref c);
        }

        var snapshot = c.Bool() ? ReadSnapshot(ref c) : null;
        c.ExpectEnd();
        if (type == MessageType.InstallSnapshot && snapshot is null)
        {
            throw new FormatException("InstallSnapshot without a snapshot.");
        }

        return new Message(type, from, to, term, logTerm, index, entries, commit, reject, hint, context, snapshot);
    }
}
