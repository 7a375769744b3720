using System.Buffers.Binary;
using System.Runtime.InteropServices;
using MemoryCluster.Compute.Engine.Internal;

namespace MemoryCluster.Compute.Engine.Vectors;

/// <summary>Snapshot save and load.</summary>
/// <remarks>
/// Format (little-endian): magic "MCHNSW01" (8 bytes), format version (int32), a fixed header
/// (dimensions, metric, M, efConstruction, efSearch, seed, generator state, node count, deleted
/// count, entry point), then the arrays (vectors, levels, ids, tombstones, layer-0 links, upper
/// links of each node with a level above 0), then a 64-bit checksum of everything before it.
/// </remarks>
public sealed partial class HnswIndex
{
    /// <summary>The snapshot format this build writes and reads.</summary>
    public const int SnapshotVersion = 1;

    private const ulong SnapshotMagic = 0x3130_5753_4E48_434DUL; // "MCHNSW01"
    private const int HeaderBytes = 8 + 4 + (4 * 5) + (8 * 2) + (4 * 2) + 8;

    /// <summary>Writes the index to <paramref name="stream"/>. Writers are blocked meanwhile; readers are not.</summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        lock (_writeLock)
        {
            var s = _storage;
            var count = _count;
            var checksum = new Checksum64();
            Span<byte> header = stackalloc byte[HeaderBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(header, SnapshotMagic);
            BinaryPrimitives.WriteInt32LittleEndian(header[8..], SnapshotVersion);
            BinaryPrimitives.WriteInt32LittleEndian(header[12..], _dim);
            BinaryPrimitives.WriteInt32LittleEndian(header[16..], (int)Options.Metric);
            BinaryPrimitives.WriteInt32LittleEndian(header[20..], _m);
            BinaryPrimitives.WriteInt32LittleEndian(header[24..], Options.EfConstruction);
            BinaryPrimitives.WriteInt32LittleEndian(header[28..], Options.EfSearch);
            BinaryPrimitives.WriteUInt64LittleEndian(header[32..], Options.Seed);
            BinaryPrimitives.WriteUInt64LittleEndian(header[40..], _random.State);
            BinaryPrimitives.WriteInt32LittleEndian(header[48..], count);
            BinaryPrimitives.WriteInt32LittleEndian(header[52..], _deleted);
            BinaryPrimitives.WriteInt64LittleEndian(header[56..], _entry);
            Write(stream, header, ref checksum);
            Write(stream, MemoryMarshal.AsBytes(s.Vectors[..(count * _dim)]), ref checksum);
            Write(stream, s.Levels.AsSpan(0, count), ref checksum);
            Write(stream, MemoryMarshal.AsBytes(s.Labels.AsSpan(0, count)), ref checksum);
            Write(stream, s.Deleted.AsSpan(0, count), ref checksum);
            Write(stream, MemoryMarshal.AsBytes(s.Links0.AsSpan(0, count * _stride0)), ref checksum);
            for (var node = 0; node < count; node++)
            {
                if (s.Upper[node] is { } upper)
                {
                    Write(stream, MemoryMarshal.AsBytes(upper.AsSpan()), ref checksum);
                }
            }

            Span<byte> trailer = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(trailer, checksum.Value);
            stream.Write(trailer);
        }
    }

    /// <summary>
    /// Reads a snapshot. When <paramref name="expected"/> is given, a snapshot built with other
    /// dimensions, metric or M is refused. Throws <see cref="SnapshotException"/> for corrupt,
    /// truncated, foreign or mismatched input.
    /// </summary>
    public static HnswIndex Load(Stream stream, HnswOptions? expected = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        try
        {
            return LoadCore(stream, expected);
        }
        catch (EndOfStreamException e)
        {
            throw new SnapshotException("HNSW snapshot is truncated.", e);
        }
    }

    private static HnswIndex LoadCore(Stream stream, HnswOptions? expected)
    {
        var checksum = new Checksum64();
        Span<byte> header = stackalloc byte[HeaderBytes];
        Read(stream, header, ref checksum);
        if (BinaryPrimitives.ReadUInt64LittleEndian(header) != SnapshotMagic)
        {
            throw new SnapshotException("Not an HNSW snapshot (bad magic number).");
        }

        var version = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        if (version != SnapshotVersion)
        {
            throw new SnapshotException($"HNSW snapshot format version {version} is not supported; this build reads version {SnapshotVersion}.");
        }

        var dim = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        var metric = (DistanceMetric)BinaryPrimitives.ReadInt32LittleEndian(header[16..]);
        var m = BinaryPrimitives.ReadInt32LittleEndian(header[20..]);
        var efConstruction = BinaryPrimitives.ReadInt32LittleEndian(header[24..]);
        var efSearch = BinaryPrimitives.ReadInt32LittleEndian(header[28..]);
        var seed = BinaryPrimitives.ReadUInt64LittleEndian(header[32..]);
        var randomState = BinaryPrimitives.ReadUInt64LittleEndian(header[40..]);
        var count = BinaryPrimitives.ReadInt32LittleEndian(header[48..]);
        var deleted = BinaryPrimitives.ReadInt32LittleEndian(header[52..]);
        var entry = BinaryPrimitives.ReadInt64LittleEndian(header[56..]);

        if (expected is not null && (expected.Dimensions != dim || expected.Metric != metric || expected.M != m))
        {
            throw new SnapshotException(
                $"HNSW snapshot does not match: it has dimensions={dim}, metric={metric}, M={m}; expected dimensions={expected.Dimensions}, metric={expected.Metric}, M={expected.M}.");
        }

        HnswOptions options;
        try
        {
            options = new HnswOptions
            {
                Dimensions = dim,
                Metric = metric,
                M = m,
                EfConstruction = efConstruction,
                EfSearch = efSearch,
                Seed = seed,
                InitialCapacity = Math.Max(1, count),
            };
            options.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new SnapshotException($"HNSW snapshot header is corrupt: {e.Message}", e);
        }

        if (count < 0 || deleted < 0 || deleted > count || (long)count * dim > Array.MaxLength
            || (stream.CanSeek && (long)count * dim * sizeof(float) > stream.Length - stream.Position))
        {
            throw new SnapshotException($"HNSW snapshot header is corrupt: node count {count}, deleted {deleted}.");
        }

        var index = new HnswIndex(options);
        var s = index._storage;
        Read(stream, MemoryMarshal.AsBytes(s.Vectors[..(count * dim)]), ref checksum);
        Read(stream, s.Levels.AsSpan(0, count), ref checksum);
        Read(stream, MemoryMarshal.AsBytes(s.Labels.AsSpan(0, count)), ref checksum);
        Read(stream, s.Deleted.AsSpan(0, count), ref checksum);
        Read(stream, MemoryMarshal.AsBytes(s.Links0.AsSpan(0, count * index._stride0)), ref checksum);
        for (var node = 0; node < count; node++)
        {
            int level = s.Levels[node];
            if (level > MaxLevel)
            {
                throw new SnapshotException($"HNSW snapshot is corrupt: node {node} has level {level}.");
            }

            if (level > 0)
            {
                var upper = new int[level * (m + 1)];
                Read(stream, MemoryMarshal.AsBytes(upper.AsSpan()), ref checksum);
                s.Upper[node] = upper;
            }
        }

        Span<byte> trailer = stackalloc byte[8];
        stream.ReadExactly(trailer);
        if (BinaryPrimitives.ReadUInt64LittleEndian(trailer) != checksum.Value)
        {
            throw new SnapshotException("HNSW snapshot checksum does not match: the file is corrupt.");
        }

        index.ValidateLinks(count, entry);
        index.RecountInDegrees(count);
        index._random = new SplitMix64(randomState);
        index._count = count;
        index._deleted = deleted;
        index._entry = entry;
        for (var node = 0; node < count; node++)
        {
            if (s.Deleted[node] == 0)
            {
                if (s.Labels[node] < 0)
                {
                    throw new SnapshotException($"HNSW snapshot is corrupt: node {node} has id {s.Labels[node]}.");
                }

                index.PublishLabel(s.Labels[node], node);
            }
        }

        return index;
    }

    private static void Write(Stream stream, ReadOnlySpan<byte> data, ref Checksum64 checksum)
    {
        checksum.Append(data);
        stream.Write(data);
    }

    private static void Read(Stream stream, Span<byte> data, ref Checksum64 checksum)
    {
        stream.ReadExactly(data);
        checksum.Append(data);
    }

    /// <summary>Even with a good checksum, refuse link ids that would point outside the index.</summary>
    private void ValidateLinks(int count, long entry)
    {
        if (count == 0 ? entry != NoEntry : (int)entry < 0 || (int)entry >= count || (int)(entry >> 32) != _storage.Levels[(int)entry])
        {
            throw new SnapshotException("HNSW snapshot is corrupt: bad entry point.");
        }

        var s = _storage;
        for (var node = 0; node < count; node++)
        {
            for (var level = 0; level <= s.Levels[node]; level++)
            {
                var links = LinksOf(s, node, level);
                if ((uint)links[0] > (uint)(links.Length - 1))
                {
                    throw new SnapshotException($"HNSW snapshot is corrupt: node {node} has {links[0]} links on level {level}.");
                }

                for (var i = 1; i <= links[0]; i++)
                {
                    if ((uint)links[i] >= (uint)count || s.Levels[links[i]] < level)
                    {
                        throw new SnapshotException($"HNSW snapshot is corrupt: node {node} links to {links[i]} on level {level}.");
                    }
                }
            }
        }
    }
}
