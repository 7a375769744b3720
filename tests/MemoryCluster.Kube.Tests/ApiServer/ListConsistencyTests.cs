using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Kube.Tests.ApiServer;

/// <summary>The double's list rules, case by case (what the real API server does with each combination).</summary>
public sealed class ListConsistencyTests
{
    // Latest RV 200; the watch cache has reached 150; history holds everything since 120.
    private static readonly ListClock Clock = new(Current: 200, Cache: 150, Oldest: 120);

    [Theory]
    [InlineData(null, null, null, "Latest", 200)]
    [InlineData("", "", null, "Latest", 200)]
    [InlineData("0", null, null, "Cache", 150)]
    [InlineData("0", "NotOlderThan", null, "Cache", 150)]
    [InlineData("140", null, null, "Cache", 150)]
    [InlineData("140", "NotOlderThan", null, "Cache", 150)]
    [InlineData("180", "NotOlderThan", null, "Latest", 200)]
    [InlineData("180", null, null, "Latest", 200)]
    [InlineData("130", "Exact", null, "Snapshot", 130)]
    [InlineData("200", "Exact", null, "Snapshot", 200)]
    [InlineData(null, null, 125L, "Snapshot", 125)]
    [InlineData("0", null, 125L, "Snapshot", 125)]
    public void Each_combination_reads_where_the_real_server_reads(string? rv, string? match, long? continueRv, string source, long at) =>
        Assert.Equal(new ListRead(Enum.Parse<ListSource>(source), at), ListConsistency.Decide(rv, match, continueRv, Clock));

    [Theory]
    [InlineData(null, "Exact", null, 422, "forbidden unless resourceVersion is provided")]
    [InlineData(null, "NotOlderThan", null, 422, "forbidden unless resourceVersion is provided")]
    [InlineData("0", "Exact", null, 422, "forbidden for resourceVersion \"0\"")]
    [InlineData("130", "Newest", null, 422, "Unsupported value")]
    [InlineData("130", "Exact", 125L, 422, "forbidden when continue is provided")]
    [InlineData("130", null, 125L, 400, "not allowed when using continue")]
    [InlineData("110", "Exact", null, 410, "too old resource version")]
    [InlineData(null, null, 110L, 410, "continue parameter is too old")]
    [InlineData("201", null, null, 504, "Too large resource version")]
    [InlineData("201", "Exact", null, 504, "Too large resource version")]
    [InlineData("abc", null, null, 400, "invalid resourceVersion")]
    public void Invalid_or_unservable_combinations_fail_with_the_real_servers_code(string? rv, string? match, long? continueRv, int code, string message)
    {
        var e = Assert.Throws<ApiError>(() => ListConsistency.Decide(rv, match, continueRv, Clock));
        Assert.Equal(code, e.Code);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }
}
