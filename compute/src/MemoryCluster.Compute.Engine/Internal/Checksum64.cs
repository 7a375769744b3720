namespace MemoryCluster.Compute.Engine.Internal;

/// <summary>
/// A 64-bit checksum over 8-byte words (multiply-rotate, FNV-style). It detects corruption and
/// truncation, not tampering. Writer and reader feed the same chunks in the same order.
/// </summary>
internal struct Checksum64
{
    private const ulong Prime = 0x100000001B3UL;
    private ulong _hash;

    public Checksum64()
    {
        _hash = 0xCBF29CE484222325UL;
    }

    public readonly ulong Value => _hash;

    public void Append(ReadOnlySpan<byte> data)
    {
        var h = _hash;
        var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(data);
        foreach (var word in words)
        {
            h = ulong.RotateLeft((h ^ word) * Prime, 29);
        }

        for (var i = words.Length * sizeof(ulong); i < data.Length; i++)
        {
            h = (h ^ data[i]) * Prime;
        }

        _hash = h ^ (ulong)data.Length;
    }
}
