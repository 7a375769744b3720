using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace MemoryCluster.Instance.Postgres;

/// <summary>A WAL position (PostgreSQL's <c>pg_lsn</c>), parsed once from its text form <c>X/Y</c>.</summary>
public readonly record struct Lsn(ulong Value) : IComparable<Lsn>
{
    public static readonly Lsn Zero;

    public bool IsZero => Value == 0;

    /// <summary>Parses <c>X/Y</c> (hexadecimal halves); throws <see cref="FormatException"/> naming the text otherwise.</summary>
    public static Lsn Parse(string text) =>
        TryParse(text, out var lsn) ? lsn : throw new FormatException($"'{text}' is not a WAL position (X/Y, hexadecimal)");

    public static bool TryParse([NotNullWhen(true)] string? text, out Lsn lsn)
    {
        lsn = Zero;
        var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        if (text is null || slash <= 0 || slash == text.Length - 1
            || !uint.TryParse(text.AsSpan(0, slash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var high)
            || !uint.TryParse(text.AsSpan(slash + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var low))
        {
            return false;
        }

        lsn = new Lsn(((ulong)high << 32) | low);
        return true;
    }

    /// <summary>Bytes from <paramref name="earlier"/> to this position; 0 when this one is not later.</summary>
    public long BytesAfter(Lsn earlier) => Value > earlier.Value ? (long)(Value - earlier.Value) : 0;

    public Lsn Plus(long bytes) => new(bytes >= 0 ? Value + (ulong)bytes : Value - Math.Min(Value, (ulong)(-bytes)));

    public static Lsn Max(Lsn a, Lsn b) => a.Value >= b.Value ? a : b;

    public static Lsn Min(Lsn a, Lsn b) => a.Value <= b.Value ? a : b;

    public int CompareTo(Lsn other) => Value.CompareTo(other.Value);

    public static bool operator <(Lsn a, Lsn b) => a.Value < b.Value;

    public static bool operator >(Lsn a, Lsn b) => a.Value > b.Value;

    public static bool operator <=(Lsn a, Lsn b) => a.Value <= b.Value;

    public static bool operator >=(Lsn a, Lsn b) => a.Value >= b.Value;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Value >> 32:X}/{Value & 0xFFFFFFFF:X}");
}
