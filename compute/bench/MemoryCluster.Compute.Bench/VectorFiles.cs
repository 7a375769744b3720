using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace MemoryCluster.Compute.Bench;

/// <summary>A row-major matrix as stored in train.f32 / test.f32 / gt.i32.</summary>
internal sealed record Matrix<T>(int Count, int Dim, T[] Data)
    where T : unmanaged
{
    public ReadOnlySpan<T> Row(int i) => Data.AsSpan(i * Dim, Dim);
}

/// <summary>Reads and writes the plain vector files and prepares Fashion-MNIST.</summary>
internal static class VectorFiles
{
    public const string FashionMnistDir = "/usr/share/datasets/fashion-mnist";

    public static Matrix<T> Read<T>(string path)
        where T : unmanaged
    {
        using var stream = File.OpenRead(path);
        Span<byte> header = stackalloc byte[8];
        stream.ReadExactly(header);
        var count = (int)BinaryPrimitives.ReadUInt32LittleEndian(header);
        var dim = (int)BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        var data = new T[(long)count * dim];
        stream.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan()));
        return new Matrix<T>(count, dim, data);
    }

    public static void Write<T>(string path, Matrix<T> matrix)
        where T : unmanaged
    {
        var temp = path + ".tmp";
        using (var stream = File.Create(temp))
        {
            Span<byte> header = stackalloc byte[8];
            BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)matrix.Count);
            BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)matrix.Dim);
            stream.Write(header);
            stream.Write(MemoryMarshal.AsBytes(matrix.Data.AsSpan()));
        }

        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Converts the Debian package's IDX files: 60,000 train images, the first 1,000 test images.</summary>
    public static string PrepareFashionMnist(string cacheDir)
    {
        var dir = Path.Combine(cacheDir, "fashion-mnist");
        Directory.CreateDirectory(dir);
        var train = Path.Combine(dir, "train.f32");
        var test = Path.Combine(dir, "test.f32");
        if (!File.Exists(train) || !File.Exists(test))
        {
            var trainSource = Path.Combine(FashionMnistDir, "train-images-idx3-ubyte.gz");
            if (!File.Exists(trainSource))
            {
                throw new FileNotFoundException(
                    "Fashion-MNIST not found; install it with `apt-get install -y dataset-fashion-mnist` or pass VECTORS=DIR.", trainSource);
            }

            Write(train, ReadIdxImages(trainSource, int.MaxValue));
            Write(test, ReadIdxImages(Path.Combine(FashionMnistDir, "t10k-images-idx3-ubyte.gz"), 1000));
        }

        return dir;
    }

    /// <summary>Exact k nearest neighbours (L2) by brute force, cached as gt.i32 beside the vectors.</summary>
    /// <returns>The ground truth and the file holding it (for the peer).</returns>
    public static (Matrix<int> Truth, string Path) GroundTruth(string dir, Matrix<float> train, Matrix<float> test, int k, string cacheDir)
    {
        var local = Path.Combine(dir, "gt.i32");
        if (File.Exists(local))
        {
            var given = Read<int>(local);
            if (given.Count == test.Count && given.Dim >= k)
            {
                return (given, local);
            }
        }

        var cached = Path.Combine(cacheDir, $"gt-{StableKey(dir)}-{train.Count}-{test.Count}-{k}.i32");
        if (File.Exists(cached))
        {
            return (Read<int>(cached), cached);
        }

        var result = new int[test.Count * k];
        Parallel.For(0, test.Count, q =>
        {
            var query = test.Row(q);
            var distances = new float[train.Count];
            for (var i = 0; i < train.Count; i++)
            {
                distances[i] = TensorPrimitives.Distance(query, train.Row(i));
            }

            var ids = new int[train.Count];
            for (var i = 0; i < ids.Length; i++)
            {
                ids[i] = i;
            }

            Array.Sort(distances, ids);
            ids.AsSpan(0, k).CopyTo(result.AsSpan(q * k, k));
        });
        var truth = new Matrix<int>(test.Count, k, result);
        Write(cached, truth);
        return (truth, cached);
    }

    /// <summary>A key that changes when the vector files change (path, sizes, modification times).</summary>
    private static string StableKey(string dir)
    {
        var text = Path.GetFullPath(dir);
        foreach (var name in new[] { "train.f32", "test.f32" })
        {
            var info = new FileInfo(Path.Combine(dir, name));
            text += $"|{info.Length}|{info.LastWriteTimeUtc.Ticks}";
        }

        var hash = 14695981039346656037UL;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return hash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    }

    private static Matrix<float> ReadIdxImages(string path, int limit)
    {
        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var buffered = new BufferedStream(gzip, 1 << 20);
        Span<byte> header = stackalloc byte[16];
        buffered.ReadExactly(header);
        var count = Math.Min(limit, (int)BinaryPrimitives.ReadUInt32BigEndian(header[4..]));
        var dim = (int)(BinaryPrimitives.ReadUInt32BigEndian(header[8..]) * BinaryPrimitives.ReadUInt32BigEndian(header[12..]));
        var bytes = new byte[count * dim];
        buffered.ReadExactly(bytes);
        var data = new float[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            data[i] = bytes[i];
        }

        return new Matrix<float>(count, dim, data);
    }
}
