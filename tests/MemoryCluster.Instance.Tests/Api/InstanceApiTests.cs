using System.Text.Json;
using MemoryCluster.Instance.Api;
using MemoryCluster.Instance.Control;
using MemoryCluster.Instance.Node;
using MemoryCluster.Instance.Postgres;
using static MemoryCluster.Instance.Tests.Node.NodeFixtures;

namespace MemoryCluster.Instance.Tests.Api;

public sealed class InstanceApiTests
{
    private static StatusDocument Document() => new()
    {
        Name = "mc-2",
        Id = 2,
        Role = InstanceRole.Replica,
        Ready = true,
        PostgresRunning = true,
        Mode = ReplicationMode.Quorum,
        Epoch = new Epoch(7),
        Primary = "mc-1",
        Timeline = 3,
        Line = Line(3, (1, 0x3000000), (2, 0x5000060)),
        FlushLsn = new Lsn(0x5000100),
        ReplayLsn = new Lsn(0x50000F0),
        PositionSettled = true,
        Follow = FollowState.Streaming,
        Streaming = true,
        Raft = new RaftStatusDocument(4, "follower", "mc-3", ["mc-1", "mc-2", "mc-3"], false),
        StateAgeMs = 120,
        FencedEpoch = new Epoch(5),
    };

    [Fact]
    public void The_status_document_round_trips_with_positions_and_lines_in_postgresqls_text_forms()
    {
        var json = JsonSerializer.Serialize(Document(), InstanceJson.Options);
        Assert.Contains("\"role\":\"replica\"", json, StringComparison.Ordinal);
        Assert.Contains("\"follow\":\"streaming\"", json, StringComparison.Ordinal);
        Assert.Contains("\"flushLsn\":\"0/5000100\"", json, StringComparison.Ordinal);
        Assert.Contains("\"line\":\"3:1@0/3000000,2@0/5000060\"", json, StringComparison.Ordinal);
        Assert.Contains("\"epoch\":7", json, StringComparison.Ordinal);
        var back = JsonSerializer.Deserialize<StatusDocument>(json, InstanceJson.Options)!;
        Assert.Equal(Document().Line, back.Line);
        Assert.Equal(json, JsonSerializer.Serialize(back, InstanceJson.Options));
    }

    [Theory]
    [InlineData("{\"name\":\"x\",\"id\":1,\"role\":\"leader\"}")]
    [InlineData("{\"name\":\"x\",\"id\":1,\"role\":\"replica\",\"flushLsn\":\"12\"}")]
    [InlineData("{\"name\":\"x\",\"id\":1,\"role\":\"replica\",\"line\":\"0:x\"}")]
    public void A_malformed_status_is_refused(string json) =>
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<StatusDocument>(json, InstanceJson.Options));

    [Fact]
    public void A_peer_view_dates_the_reported_state_on_the_readers_clock()
    {
        var view = InstanceJson.ToPeerView(Document(), Id(2), askedAt: 10_000);
        Assert.Equal(10_000 - 120, view.StateAt);
        Assert.Equal(new Lsn(0x5000100), view.FlushLsn);
        Assert.True(view.PositionSettled);
        Assert.Equal(new Epoch(5), view.FencedEpoch);
        Assert.False(view.AcceptsStandbys);
    }

    [Fact]
    public void A_primary_that_accepts_standbys_says_so_and_a_report_without_the_field_reads_as_not_accepting()
    {
        var primary = Document() with { Role = InstanceRole.Primary, Ready = false, AcceptsStandbys = true, Follow = FollowState.None, Streaming = false };
        var json = JsonSerializer.Serialize(primary, InstanceJson.Options);
        Assert.Contains("\"acceptsStandbys\":true", json, StringComparison.Ordinal);
        var view = InstanceJson.ToPeerView(JsonSerializer.Deserialize<StatusDocument>(json, InstanceJson.Options)!, Id(1), askedAt: 10_000);
        Assert.True(view.AcceptsStandbys);
        Assert.False(view.Ready);

        // A manager of an earlier release does not write the field: its replicas wait for it to be ready, as before.
        var older = json.Replace(",\"acceptsStandbys\":true", string.Empty, StringComparison.Ordinal);
        Assert.DoesNotContain("acceptsStandbys", older, StringComparison.Ordinal);
        Assert.False(InstanceJson.ToPeerView(JsonSerializer.Deserialize<StatusDocument>(older, InstanceJson.Options)!, Id(1), askedAt: 10_000).AcceptsStandbys);
    }

    [Fact]
    public void A_lease_request_is_signed_for_its_endpoint_alone()
    {
        var key = new byte[32];
        key[0] = 7;
        var body = InstanceApiClient.LeaseBody(Id(3), new Epoch(9));
        Assert.Equal("3 9", body);
        var signature = InstanceApiClient.Sign(key, InstanceApiClient.LeasePurpose, body);
        Assert.True(InstanceApiClient.Verify(key, InstanceApiClient.LeasePurpose, body, signature));
        Assert.False(InstanceApiClient.Verify(key, InstanceApiClient.ProposePurpose, body, signature));
        Assert.False(InstanceApiClient.Verify(key, InstanceApiClient.LeasePurpose, "3 10", signature));
        Assert.False(InstanceApiClient.Verify(new byte[32], InstanceApiClient.LeasePurpose, body, signature));
        Assert.False(InstanceApiClient.Verify(key, InstanceApiClient.LeasePurpose, body, null));
        Assert.True(InstanceApiClient.TryParseLeaseBody(body, out var member, out var epoch));
        Assert.Equal((Id(3), new Epoch(9)), (member, epoch));
        Assert.False(InstanceApiClient.TryParseLeaseBody("3", out _, out _));
        Assert.False(InstanceApiClient.TryParseLeaseBody("-3 9", out _, out _));
    }

    [Fact]
    public async Task An_unreachable_manager_reads_as_none_and_a_client_without_the_key_cannot_call_internal_endpoints()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var client = new InstanceApiClient(http);
        Assert.Null(await client.TryStatusAsync(new Uri("http://127.0.0.1:1/"), CancellationToken.None));
        await Assert.ThrowsAsync<InstanceApiException>(() => client.StatusAsync(new Uri("http://127.0.0.1:1/"), CancellationToken.None));
        await Assert.ThrowsAsync<InvalidOperationException>(() => client.RenewAsync(new Uri("http://127.0.0.1:1/"), Id(1), new Epoch(1), CancellationToken.None));
    }
}
