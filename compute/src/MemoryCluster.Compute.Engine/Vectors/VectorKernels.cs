using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MemoryCluster.Compute.Engine.Vectors;

/// <summary>
/// The distance kernels of the index: squared L2 and the dot product over two rows of equal length, with four
/// independent accumulators (a single chain of adds waits on the adder's latency at every step: measured at half the
/// speed on 784 dimensions) and no square root (the index compares distances; <see cref="HnswIndex"/> takes the root
/// only of what it reports).
/// </summary>
internal static class VectorKernels
{
    /// <summary>Sum of squared differences of <paramref name="length"/> floats from <paramref name="a"/> and <paramref name="b"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float L2Squared(ref float a, ref float b, int length)
    {
        nuint i = 0;
        var n = (nuint)length;
        float sum;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var s0 = Vector512<float>.Zero;
            var s1 = Vector512<float>.Zero;
            var s2 = Vector512<float>.Zero;
            var s3 = Vector512<float>.Zero;
            for (; i + 64 <= n; i += 64)
            {
                var d0 = Vector512.LoadUnsafe(ref a, i) - Vector512.LoadUnsafe(ref b, i);
                var d1 = Vector512.LoadUnsafe(ref a, i + 16) - Vector512.LoadUnsafe(ref b, i + 16);
                var d2 = Vector512.LoadUnsafe(ref a, i + 32) - Vector512.LoadUnsafe(ref b, i + 32);
                var d3 = Vector512.LoadUnsafe(ref a, i + 48) - Vector512.LoadUnsafe(ref b, i + 48);
                s0 = Vector512.FusedMultiplyAdd(d0, d0, s0);
                s1 = Vector512.FusedMultiplyAdd(d1, d1, s1);
                s2 = Vector512.FusedMultiplyAdd(d2, d2, s2);
                s3 = Vector512.FusedMultiplyAdd(d3, d3, s3);
            }

            for (; i + 16 <= n; i += 16)
            {
                var d = Vector512.LoadUnsafe(ref a, i) - Vector512.LoadUnsafe(ref b, i);
                s0 = Vector512.FusedMultiplyAdd(d, d, s0);
            }

            sum = Vector512.Sum((s0 + s1) + (s2 + s3));
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var s0 = Vector256<float>.Zero;
            var s1 = Vector256<float>.Zero;
            var s2 = Vector256<float>.Zero;
            var s3 = Vector256<float>.Zero;
            for (; i + 32 <= n; i += 32)
            {
                var d0 = Vector256.LoadUnsafe(ref a, i) - Vector256.LoadUnsafe(ref b, i);
                var d1 = Vector256.LoadUnsafe(ref a, i + 8) - Vector256.LoadUnsafe(ref b, i + 8);
                var d2 = Vector256.LoadUnsafe(ref a, i + 16) - Vector256.LoadUnsafe(ref b, i + 16);
                var d3 = Vector256.LoadUnsafe(ref a, i + 24) - Vector256.LoadUnsafe(ref b, i + 24);
                s0 = Vector256.FusedMultiplyAdd(d0, d0, s0);
                s1 = Vector256.FusedMultiplyAdd(d1, d1, s1);
                s2 = Vector256.FusedMultiplyAdd(d2, d2, s2);
                s3 = Vector256.FusedMultiplyAdd(d3, d3, s3);
            }

            for (; i + 8 <= n; i += 8)
            {
                var d = Vector256.LoadUnsafe(ref a, i) - Vector256.LoadUnsafe(ref b, i);
                s0 = Vector256.FusedMultiplyAdd(d, d, s0);
            }

            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        else
        {
            // No 256- or 512-bit vectors (Arm64, SSE only): TensorPrimitives' own 128-bit code.
            var distance = TensorPrimitives.Distance(MemoryMarshal.CreateReadOnlySpan(ref a, length), MemoryMarshal.CreateReadOnlySpan(ref b, length));
            return distance * distance;
        }

        for (; i < n; i++)
        {
            var d = Unsafe.Add(ref a, i) - Unsafe.Add(ref b, i);
            sum += d * d;
        }

        return sum;
    }

    /// <summary>Dot product of <paramref name="length"/> floats from <paramref name="a"/> and <paramref name="b"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(ref float a, ref float b, int length)
    {
        nuint i = 0;
        var n = (nuint)length;
        float sum;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var s0 = Vector512<float>.Zero;
            var s1 = Vector512<float>.Zero;
            var s2 = Vector512<float>.Zero;
            var s3 = Vector512<float>.Zero;
            for (; i + 64 <= n; i += 64)
            {
                s0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref a, i), Vector512.LoadUnsafe(ref b, i), s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref a, i + 16), Vector512.LoadUnsafe(ref b, i + 16), s1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref a, i + 32), Vector512.LoadUnsafe(ref b, i + 32), s2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref a, i + 48), Vector512.LoadUnsafe(ref b, i + 48), s3);
            }

            for (; i + 16 <= n; i += 16)
            {
                s0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref a, i), Vector512.LoadUnsafe(ref b, i), s0);
            }

            sum = Vector512.Sum((s0 + s1) + (s2 + s3));
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var s0 = Vector256<float>.Zero;
            var s1 = Vector256<float>.Zero;
            var s2 = Vector256<float>.Zero;
            var s3 = Vector256<float>.Zero;
            for (; i + 32 <= n; i += 32)
            {
                s0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref a, i), Vector256.LoadUnsafe(ref b, i), s0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref a, i + 8), Vector256.LoadUnsafe(ref b, i + 8), s1);
                s2 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref a, i + 16), Vector256.LoadUnsafe(ref b, i + 16), s2);
                s3 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref a, i + 24), Vector256.LoadUnsafe(ref b, i + 24), s3);
            }

            for (; i + 8 <= n; i += 8)
            {
                s0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref a, i), Vector256.LoadUnsafe(ref b, i), s0);
            }

            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        else
        {
            return TensorPrimitives.Dot(MemoryMarshal.CreateReadOnlySpan(ref a, length), MemoryMarshal.CreateReadOnlySpan(ref b, length));
        }

        for (; i < n; i++)
        {
            sum += Unsafe.Add(ref a, i) * Unsafe.Add(ref b, i);
        }

        return sum;
    }
}
