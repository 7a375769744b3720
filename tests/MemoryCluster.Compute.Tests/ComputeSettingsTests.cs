namespace MemoryCluster.Compute.Tests;

public sealed class ComputeSettingsTests
{
    private static Dictionary<string, string> Valid() => new(StringComparer.Ordinal)
    {
        ["primary-host"] = "demo-rw",
        ["user"] = "app",
        ["password"] = "secret",
        ["token"] = "0123456789abcdef0123",
    };

    [Fact]
    public void The_operator_s_variables_make_a_connection_string_and_defaults_fill_the_rest()
    {
        var (options, errors) = ComputeSettings.Parse(Valid());
        Assert.Empty(errors);
        Assert.Contains("Host=demo-rw", options!.ReadWrite, StringComparison.Ordinal);
        Assert.Contains("Database=app", options.ReadWrite, StringComparison.Ordinal);
        Assert.Null(options.ReadOnly);
        Assert.Equal("http://0.0.0.0:8080", options.Listen);
        Assert.Equal(["sameAs"], options.IdentityPredicates);
        Assert.Equal(16, options.Vectors.M);
    }

    [Theory]
    [InlineData("port", "http", "port: must be a whole number from 0 to 65535 (was 'http')")]
    [InlineData("hnsw-m", "1", "hnsw-m: must be a whole number from 2 to 128 (was '1')")]
    [InlineData("token", "short", "token: must be at least 16 characters")]
    [InlineData("rw", "Host=a;Bogus Keyword=1", "rw: not a connection string")]
    [InlineData("rw", "Host=a", "rw: give either --rw or --primary-host, not both")]
    [InlineData("replicaz", "x", "replicaz: unknown setting")]
    [InlineData("identity-predicates", ",", "identity-predicates: name at least one predicate")]
    public void A_bad_setting_is_refused_with_its_key_and_why(string key, string value, string error)
    {
        var values = Valid();
        values[key] = value;
        var (options, errors) = ComputeSettings.Parse(values);
        Assert.Null(options);
        Assert.Contains(errors, e => e.StartsWith(error, StringComparison.Ordinal));
    }

    [Fact]
    public void Without_a_primary_or_a_token_it_names_both()
    {
        var (options, errors) = ComputeSettings.Parse(new Dictionary<string, string>());
        Assert.Null(options);
        Assert.Contains(errors, e => e.StartsWith("rw: required", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("token: required", StringComparison.Ordinal));
    }
}
