using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Host;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Instance.Tests.Host;

/// <summary>The guard of the endpoints that change something, on a real Kestrel, called through the real client.</summary>
public sealed class SignedEndpointsTests
{
    private static readonly byte[] Key = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];

    [Theory]
    [InlineData("valid", SignatureCheck.Valid)]
    [InlineData("no signature", SignatureCheck.Missing)]
    [InlineData("another key", SignatureCheck.Invalid)]
    [InlineData("another purpose", SignatureCheck.Invalid)]
    [InlineData("another path", SignatureCheck.Invalid)]
    [InlineData("another body", SignatureCheck.Invalid)]
    [InlineData("another method", SignatureCheck.Invalid)]
    [InlineData("signed 61 s ago", SignatureCheck.Stale)]
    [InlineData("signed 61 s ahead", SignatureCheck.Stale)]
    [InlineData("signed 59 s ago", SignatureCheck.Valid)]
    [InlineData("timestamp not a number", SignatureCheck.Invalid)]
    public void A_signature_holds_for_one_key_purpose_request_and_window(string variant, SignatureCheck expected)
    {
        const long now = 1_800_000_000_000;
        var at = variant switch
        {
            "signed 61 s ago" => now - 61_000,
            "signed 61 s ahead" => now + 61_000,
            "signed 59 s ago" => now - 59_000,
            _ => now,
        };
        var key = variant == "another key" ? new byte[32] : Key;
        var signature = SignedRequest.Sign(key, variant == "another purpose" ? "members-add" : "switchover", at, "POST", "/switchover", "{\"to\":\"mc-2\"}");
        var check = SignedRequest.Check(
            Key,
            "switchover",
            variant == "another method" ? "DELETE" : "POST",
            variant == "another path" ? "/members/2" : "/switchover",
            variant == "another body" ? "{\"to\":\"mc-3\"}" : "{\"to\":\"mc-2\"}",
            variant == "no signature" ? null : signature,
            variant == "timestamp not a number" ? "12x" : at.ToString(System.Globalization.CultureInfo.InvariantCulture),
            now);
        Assert.Equal(expected, check);
    }

    [Fact]
    public async Task Unsigned_and_wrongly_signed_requests_are_refused_without_running_the_handler_and_a_signed_one_runs_once()
    {
        var calls = 0;
        await using var app = await StartAsync((_, _, _) =>
        {
            Interlocked.Increment(ref calls);
            return Task.FromResult(Results.Json(new ManagerAnswer(true, "done"), InstanceJson.Options, statusCode: 202));
        });
        var baseUri = BaseUri(app);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };

        var unsigned = await new InstanceApiClient(http).SwitchoverAsync(baseUri, "mc-2", CancellationToken.None);
        Assert.False(unsigned.Accepted);
        Assert.Contains("signed with the cluster key", unsigned.Message, StringComparison.Ordinal);
        Assert.Contains("nothing was changed", unsigned.Message, StringComparison.Ordinal);
        using (var raw = await http.PostAsync(new Uri(baseUri, "switchover"), new StringContent("{}")))
        {
            Assert.Equal(401, (int)raw.StatusCode);
        }

        var wrongKey = await new InstanceApiClient(http, new byte[32]).SwitchoverAsync(baseUri, "mc-2", CancellationToken.None);
        Assert.False(wrongKey.Accepted);
        Assert.Contains("not the cluster key's", wrongKey.Message, StringComparison.Ordinal);

        // A clock far from the manager's: the signature is out of the window.
        var skewed = new InstanceApiClient(http, Key, new FixedClock(DateTimeOffset.UtcNow.AddMinutes(-5)));
        Assert.Contains("more than 60 s", (await skewed.SwitchoverAsync(baseUri, "mc-2", CancellationToken.None)).Message, StringComparison.Ordinal);
        Assert.Equal(0, calls);

        var signed = await new InstanceApiClient(http, Key).SwitchoverAsync(baseUri, "mc-2", CancellationToken.None);
        Assert.True(signed.Accepted, signed.Message);
        Assert.Equal(1, calls);

        // The same signed request again (a replay within the window) is refused.
        var at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        const string body = "{\"to\":\"mc-3\"}";
        var signature = SignedRequest.Sign(Key, InstanceApiClient.SwitchoverPurpose, at, "POST", "/switchover", body);
        int[] statuses = [await PostAsync(http, baseUri, body, at, signature), await PostAsync(http, baseUri, body, at, signature)];
        Assert.Equal([202, 403], statuses);
        Assert.Equal(2, calls);
    }

    private static async Task<int> PostAsync(HttpClient http, Uri baseUri, string body, long at, string signature)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUri, "switchover")) { Content = new StringContent(body) };
        request.Headers.Add(InstanceApiClient.SignatureHeader, signature);
        request.Headers.Add(SignedRequest.TimestampHeader, at.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var response = await http.SendAsync(request);
        return (int)response.StatusCode;
    }

    private static async Task<WebApplication> StartAsync(Func<string, HttpContext, CancellationToken, Task<IResult>> handle)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapSigned("POST", "/switchover", InstanceApiClient.SwitchoverPurpose, new SignatureGuard(Key, TimeProvider.System, NullLogger.Instance), handle);
        await app.StartAsync();
        return app;
    }

    private static Uri BaseUri(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/");

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
