using System.Security.Cryptography;
using MemoryCluster.Compute.Engine.Vectors;
using MemoryCluster.Compute.Feed;

namespace MemoryCluster.Compute.Memory;

/// <summary>A local snapshot that cannot be used: missing parts, another format, or not what was written.</summary>
public sealed class MemorySnapshotException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// What a snapshot holds: one state of the model at a feed commit. The entity names in the graph's id order, the
/// triples' rows, and each embedding model's HNSW index as the engine saves it (its ids are those graph ids).
/// </summary>
public sealed record SnapshotContents(FeedPosition Position, long SkippedEmbeddings, IReadOnlyList<string> Nodes, IReadOnlyList<TripleRow> Triples, IReadOnlyList<SnapshotSpace> Spaces);

/// <summary>The feed commit a snapshot was taken at, and the embedding rows its model had not indexed.</summary>
public sealed record SnapshotHeader(FeedPosition Position, long SkippedEmbeddings);

/// <summary>One embedding model's index, saved (<see cref="HnswIndex.Save"/>).</summary>
public sealed record SnapshotSpace(string Model, int Dimensions, byte[] Index);

/// <summary>
/// The model's rows at a feed position, in a local file, so that a restart reads them from disk instead of loading
/// everything from PostgreSQL. The graph is built from the rows as from a load (its entity ids first, in their
/// order, so that the saved vector indexes, keyed by those ids, are loaded as they are instead of built again).
/// Written to a temporary file, flushed and renamed, so a crash leaves
/// the previous snapshot or none; the file ends with a SHA-256 of the rest, checked before anything is applied. A
/// snapshot is only a starting point: the caller checks its position against the database's feed before using it.
/// </summary>
public static class MemorySnapshot
{
    public const string FileName = "memory.snapshot";

    public const int Version = 2;

    private const ulong Magic = 0x3130_534D_454D_434DUL; // "MCMEMS01"

    private const int HeaderBytes = 8 + 4 + 8 + 16 + 8 + 4 + 8 + 4;

    private const int HashBytes = 32;

    /// <summary>Writes <paramref name="contents"/> as <paramref name="directory"/>/<see cref="FileName"/>, replacing the previous one in one step.</summary>
    public static void Write(string directory, SnapshotContents contents)
    {
        ArgumentNullException.ThrowIfNull(contents);
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName);
        var temp = path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16))
        {
            using (var hashing = new HashingStream(file))
            using (var writer = new BinaryWriter(hashing, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Magic);
                writer.Write(Version);
                writer.Write(contents.Position.Seq);
                writer.Write(contents.Position.CommitId.ToByteArray());
                writer.Write(contents.SkippedEmbeddings);
                writer.Write(contents.Nodes.Count);
                writer.Write((long)contents.Triples.Count);
                writer.Write(contents.Spaces.Count);
                foreach (var name in contents.Nodes)
                {
                    writer.Write(name);
                }

                foreach (var t in contents.Triples.OrderBy(t => t.Id))
                {
                    writer.Write(t.Id);
                    writer.Write(t.Subject);
                    writer.Write(t.Predicate);
                    writer.Write(t.Object);
                    writer.Write((byte)t.Kind);
                    writer.Write(t.Confidence);
                    WriteOptional(writer, t.SourceId);
                    writer.Write(t.ValidFrom);
                    WriteOptional(writer, t.ValidTo);
                    WriteOptional(writer, t.SupersededBy);
                }

                foreach (var space in contents.Spaces)
                {
                    writer.Write(space.Model);
                    writer.Write(space.Dimensions);
                    writer.Write(space.Index);
                }

                writer.Flush();
                file.Write(hashing.Hash());
            }

            file.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Reads the snapshot in <paramref name="directory"/>, if there is one: null when there is none. The whole file is
    /// checked first (format, length, hash), then its rows go to the callbacks in the order they were written.
    /// </summary>
    /// <exception cref="MemorySnapshotException">The file is there but cannot be used; the callbacks were not called.</exception>
    public static SnapshotHeader? Read(string directory, Action<string> node, Action<TripleRow> triple, Action<string, int, HnswIndex> space)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(triple);
        ArgumentNullException.ThrowIfNull(space);
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            return null;
        }

        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        if (file.Length < HeaderBytes + HashBytes)
        {
            throw new MemorySnapshotException($"{path}: {file.Length} bytes, shorter than a snapshot's header and hash");
        }

        Verify(file, path);
        file.Position = 0;
        using var reader = new BinaryReader(new BoundedStream(file, file.Length - HashBytes), System.Text.Encoding.UTF8, leaveOpen: true);
        try
        {
            if (reader.ReadUInt64() != Magic)
            {
                throw new MemorySnapshotException($"{path}: not a memory snapshot (bad magic number)");
            }

            var version = reader.ReadInt32();
            if (version != Version)
            {
                throw new MemorySnapshotException($"{path}: snapshot format {version}; this build reads format {Version}");
            }

            var position = new FeedPosition(reader.ReadInt64(), new Guid(reader.ReadBytes(16)));
            var skipped = reader.ReadInt64();
            var nodes = reader.ReadInt32();
            var triples = reader.ReadInt64();
            var spaces = reader.ReadInt32();
            if (position.Seq < 0 || skipped < 0 || nodes < 0 || triples < 0 || spaces < 0)
            {
                throw new MemorySnapshotException($"{path}: header is corrupt (commit {position.Seq}, {nodes} entities, {triples} triples, {spaces} embedding models)");
            }

            for (var i = 0; i < nodes; i++)
            {
                node(reader.ReadString());
            }

            for (long i = 0; i < triples; i++)
            {
                var id = reader.ReadInt64();
                var subject = reader.ReadString();
                var predicate = reader.ReadString();
                var obj = reader.ReadString();
                var kind = (ObjectKind)reader.ReadByte();
                if (kind is not (ObjectKind.Entity or ObjectKind.Literal))
                {
                    throw new MemorySnapshotException($"{path}: triple {id} has object kind {(int)kind}");
                }

                var confidence = reader.ReadSingle();
                var source = ReadOptional(reader);
                var from = reader.ReadInt64();
                var to = ReadOptional(reader);
                var by = ReadOptional(reader);
                triple(new TripleRow(id, subject, predicate, obj, kind, confidence, source, from, to, by));
            }

            for (var i = 0; i < spaces; i++)
            {
                var model = reader.ReadString();
                var dimensions = reader.ReadInt32();
                HnswIndex index;
                try
                {
                    index = HnswIndex.Load(reader.BaseStream);
                }
                catch (SnapshotException e)
                {
                    throw new MemorySnapshotException($"{path}: the index of model '{model}': {e.Message}", e);
                }

                if (index.Options.Dimensions != dimensions)
                {
                    throw new MemorySnapshotException($"{path}: the index of model '{model}' has {index.Options.Dimensions} dimensions, the model {dimensions}");
                }

                space(model, dimensions, index);
            }

            if (reader.BaseStream.Position != reader.BaseStream.Length)
            {
                throw new MemorySnapshotException($"{path}: {reader.BaseStream.Length - reader.BaseStream.Position} bytes after the last row");
            }

            return new SnapshotHeader(position, skipped);
        }
        catch (EndOfStreamException e)
        {
            throw new MemorySnapshotException($"{path}: ends in the middle of a row", e);
        }
    }

    /// <summary>Moves an unusable snapshot aside (kept for a look, replaced by the next one set aside).</summary>
    public static void SetAside(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (File.Exists(path))
        {
            File.Move(path, path + ".rejected", overwrite: true);
        }
    }

    private static void Verify(FileStream file, string path)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        var left = file.Length - HashBytes;
        while (left > 0)
        {
            var n = file.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n == 0)
            {
                throw new MemorySnapshotException($"{path}: shorter than it was a moment ago");
            }

            hash.AppendData(buffer, 0, n);
            left -= n;
        }

        var stored = new byte[HashBytes];
        file.ReadExactly(stored);
        if (!CryptographicOperations.FixedTimeEquals(stored, hash.GetHashAndReset()))
        {
            throw new MemorySnapshotException($"{path}: its hash does not match its contents (a torn or damaged file)");
        }
    }

    private static void WriteOptional(BinaryWriter writer, long? value)
    {
        writer.Write(value.HasValue);
        if (value is { } v)
        {
            writer.Write(v);
        }
    }

    private static long? ReadOptional(BinaryReader reader) => reader.ReadBoolean() ? reader.ReadInt64() : null;

    // Hashes what passes through to the file.
    private sealed class HashingStream(Stream inner) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public byte[] Hash() => _hash.GetHashAndReset();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _hash.AppendData(buffer);
            inner.Write(buffer);
        }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _hash.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    // Reads no further than the rows (the hash after them is not data).
    private sealed class BoundedStream(Stream inner, long length) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var left = length - inner.Position;
            return left <= 0 ? 0 : inner.Read(buffer[..(int)Math.Min(buffer.Length, left)]);
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
