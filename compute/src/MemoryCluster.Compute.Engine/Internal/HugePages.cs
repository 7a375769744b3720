using System.Runtime.InteropServices;

namespace MemoryCluster.Compute.Engine.Internal;

/// <summary>
/// Asks Linux for 2 MB pages over a pinned array's whole 2 MB-aligned ranges (<c>madvise(MADV_HUGEPAGE)</c>), before
/// its pages are first written. A search reads vectors at random over hundreds of megabytes: with 4 KB pages nearly
/// every read also misses the TLB and walks the page tables. Advice only: elsewhere, or when the kernel declines
/// (transparent huge pages set to <c>never</c>), nothing changes.
/// </summary>
internal static partial class HugePages
{
    private const int MadvHugePage = 14;
    private const long HugePageSize = 2 * 1024 * 1024;

    /// <summary>Advises the 2 MB pages lying wholly inside [<paramref name="start"/>, start + <paramref name="bytes"/>); true when the kernel took it.</summary>
    public static bool Advise(nint start, long bytes)
    {
        if (!OperatingSystem.IsLinux() || bytes < HugePageSize)
        {
            return false;
        }

        var first = (start + (nint)(HugePageSize - 1)) & ~(nint)(HugePageSize - 1);
        var end = (start + (nint)bytes) & ~(nint)(HugePageSize - 1);
        if (end <= first)
        {
            return false;
        }

        try
        {
            return Madvise(first, (nuint)(end - first), MadvHugePage) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nint address, nuint length, int advice);
}
