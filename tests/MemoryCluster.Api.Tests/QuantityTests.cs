using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace MemoryCluster.Api.Tests;

public sealed class QuantityTests
{
    [Theory]
    [InlineData("1Gi", 1073741824)]
    [InlineData("64Mi", 67108864)]
    [InlineData("500m", 0.5)]
    [InlineData("2", 2)]
    [InlineData("1.5G", 1500000000)]
    [InlineData("1e3", 1000)]
    [InlineData("10k", 10000)]
    [InlineData(".5", 0.5)]
    public void Quantity_is_parsed_into_base_units(string text, double expected)
    {
        Assert.True(Quantity.TryParse(text, out var value));
        Assert.Equal((decimal)expected, value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("ten")]
    [InlineData("1 Gi")]
    [InlineData("1GB")]
    [InlineData("1ki")]
    [InlineData("Gi")]
    public void Text_that_is_not_a_quantity_is_refused(string text) => Assert.False(Quantity.TryParse(text, out _));

    [Property]
    public Property Binary_suffixes_multiply_by_powers_of_1024() =>
        Prop.ForAll(
            Gen.Choose(0, 100000).ToArbitrary(),
            Gen.Elements(("Ki", 1), ("Mi", 2), ("Gi", 3), ("Ti", 4)).ToArbitrary(),
            (n, suffix) =>
            {
                var ok = Quantity.TryParse($"{n}{suffix.Item1}", out var value);
                var expected = n * (decimal)Math.Pow(1024, suffix.Item2);
                return (ok && value == expected).Label($"{n}{suffix.Item1} = {value}, expected {expected}");
            });

    [Property]
    public Property Json_number_or_string_reads_as_the_same_quantity() =>
        Prop.ForAll(Gen.Choose(0, int.MaxValue).ToArbitrary(), n =>
        {
            var fromNumber = System.Text.Json.JsonSerializer.Deserialize<Quantity>(n.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var fromString = System.Text.Json.JsonSerializer.Deserialize<Quantity>($"\"{n}\"");
            return fromNumber == fromString && fromNumber.Value == n;
        });
}
