using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MemoryCluster.Instance.Control;

namespace MemoryCluster.Instance.Api;

/// <summary>A request to a manager's API that failed: unreachable, timed out, or answered with something unreadable.</summary>
public sealed class InstanceApiException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The one client of the instance manager's HTTP API, used by the managers themselves (reports, lease renewals,
/// forwarded proposals), the command line, the end-to-end suite and the operator. The internal endpoints are
/// signed with the cluster key (HMAC-SHA256 of <c>PURPOSE:BODY</c>, so a signature for one endpoint is no good for
/// another); so are the public endpoints that change something (switchover, membership: <see cref="SignedRequest"/>,
/// which adds the time and the path). A client without the key can use only the read-only ones.
/// </summary>
/// <param name="http">The HTTP client (its timeout bounds every call).</param>
/// <param name="clusterKey">The cluster key; null for a client that only reads.</param>
/// <param name="time">The wall clock signatures are dated with (the system's by default).</param>
public sealed class InstanceApiClient(HttpClient http, byte[]? clusterKey = null, TimeProvider? time = null)
{
    public const string SignatureHeader = "X-MemoryCluster-Signature";
    public const string LeasePurpose = "lease";
    public const string ProposePurpose = "propose";
    public const string FencedPurpose = "fenced";
    public const string SwitchoverPurpose = "switchover";
    public const string AddMemberPurpose = "members-add";
    public const string RemoveMemberPurpose = "members-remove";
    public const string MaintenancePurpose = "maintenance";
    public const string ReinitPurpose = "reinit";
    public const string FailoverPurpose = "failover";

    /// <summary>Whether this client can call the endpoints that change something.</summary>
    public bool CanSign => clusterKey is not null;

    /// <summary>
    /// GET /status; throws <see cref="InstanceApiException"/> when the manager cannot be read. <paramref name="fresh"/>:
    /// the manager queries its PostgreSQL before it answers (a few hundred milliseconds at most).
    /// </summary>
    public Task<StatusDocument> StatusAsync(Uri baseUri, CancellationToken cancellationToken, bool fresh = false) =>
        GetAsync<StatusDocument>(baseUri, fresh ? "status?fresh=true" : "status", cancellationToken);

    /// <summary>GET <paramref name="path"/> as JSON; any failure (no answer, not JSON, nothing) as <see cref="InstanceApiException"/>.</summary>
    private async Task<T> GetAsync<T>(Uri baseUri, string path, CancellationToken cancellationToken)
    {
        try
        {
            return await http.GetFromJsonAsync<T>(new Uri(baseUri, path), InstanceJson.Options, cancellationToken).ConfigureAwait(false)
                ?? throw new InstanceApiException($"{baseUri} answered /{path} with nothing");
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or NotSupportedException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new InstanceApiException($"{baseUri}{path}: {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>GET /status; null when the manager does not answer in time (or at all).</summary>
    public Task<StatusDocument?> TryStatusAsync(Uri baseUri, CancellationToken cancellationToken, bool fresh = false) =>
        OrNullAsync(StatusAsync(baseUri, cancellationToken, fresh), cancellationToken);

    /// <summary>GET /history; null when the manager does not answer in time (or at all).</summary>
    public Task<HistoryDocument?> TryHistoryAsync(Uri baseUri, CancellationToken cancellationToken) =>
        OrNullAsync(HistoryAsync(baseUri, cancellationToken), cancellationToken);

    /// <summary>The answer of a read, or null when the manager could not be read or the caller gave up.</summary>
    private static async Task<T?> OrNullAsync<T>(Task<T> read, CancellationToken cancellationToken)
        where T : class
    {
        try
        {
            return await read.ConfigureAwait(false);
        }
        catch (InstanceApiException)
        {
            return null;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>
    /// POST /switchover: to <paramref name="to"/>, or (null) to the most caught-up streaming replica. Signed when this
    /// client has the cluster key; unsigned, the manager refuses it (401) and changes nothing.
    /// </summary>
    public Task<ManagerAnswer> SwitchoverAsync(Uri baseUri, string? to, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, baseUri, "switchover", SwitchoverPurpose, JsonSerializer.Serialize(new SwitchoverRequest(to), InstanceJson.Options), cancellationToken);

    /// <summary>
    /// POST /maintenance: pauses (<paramref name="on"/>) or resumes automatic failover, through the Raft leader.
    /// Signed like a switchover; unsigned, refused (401) and nothing changes.
    /// </summary>
    public Task<ManagerAnswer> MaintenanceAsync(Uri baseUri, bool on, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, baseUri, "maintenance", MaintenancePurpose, JsonSerializer.Serialize(new MaintenanceRequest(on), InstanceJson.Options), cancellationToken);

    /// <summary>POST /failover (signed, to the Raft leader): a forced failover of a failed primary, to <paramref name="to"/> or the best candidate.</summary>
    public Task<ManagerAnswer> FailoverAsync(Uri baseUri, string? to, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, baseUri, "failover", FailoverPurpose, JsonSerializer.Serialize(new SwitchoverRequest(to), InstanceJson.Options), cancellationToken);

    /// <summary>
    /// POST /reinit on the member to rebuild: it sets its data aside and clones afresh from the primary; refused for
    /// the primary. Signed like a switchover.
    /// </summary>
    public Task<ManagerAnswer> ReinitAsync(Uri baseUri, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, baseUri, "reinit", ReinitPurpose, "{}", cancellationToken);

    /// <summary>GET /history: the changes of primary, as this member has applied the control state (open: no key needed).</summary>
    public Task<HistoryDocument> HistoryAsync(Uri baseUri, CancellationToken cancellationToken) => GetAsync<HistoryDocument>(baseUri, "history", cancellationToken);

    /// <summary>GET /members: the committed Raft membership (open: no key needed).</summary>
    public Task<MembersDocument> MembersAsync(Uri baseUri, CancellationToken cancellationToken) => GetAsync<MembersDocument>(baseUri, "members", cancellationToken);

    /// <summary>
    /// POST /members (signed): takes the next step to make the member a voter (a learner first, promoted once caught
    /// up). <see cref="ManagerAnswer.Done"/> is true once it votes; until then, ask again: repeated calls converge.
    /// </summary>
    public Task<ManagerAnswer> AddMemberAsync(Uri baseUri, AddMemberRequest member, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, baseUri, "members", AddMemberPurpose, JsonSerializer.Serialize(member, InstanceJson.Options), cancellationToken);

    /// <summary>
    /// DELETE /members/{id} (signed): removes the member (never the primary: switch over first). <see cref="ManagerAnswer.Done"/>
    /// is true once removed; an in-progress answer asks again (e.g. after a Raft leadership hand-over).
    /// </summary>
    public Task<ManagerAnswer> RemoveMemberAsync(Uri baseUri, ulong id, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Delete, baseUri, string.Create(CultureInfo.InvariantCulture, $"members/{id}"), RemoveMemberPurpose, string.Empty, cancellationToken);

    /// <summary>
    /// Sends a request to an endpoint that changes something, as JSON, signed (<see cref="SignedRequest"/>) when this
    /// client has the key; the manager's answer, whatever its status.
    /// </summary>
    private async Task<ManagerAnswer> SendAsync(HttpMethod method, Uri baseUri, string relative, string purpose, string body, CancellationToken cancellationToken)
    {
        var uri = new Uri(baseUri, relative);
        using var request = new HttpRequestMessage(method, uri);
        if (body.Length > 0)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        if (clusterKey is { } key)
        {
            var at = (time ?? TimeProvider.System).GetUtcNow().ToUnixTimeMilliseconds();
            request.Headers.Add(SignedRequest.TimestampHeader, at.ToString(CultureInfo.InvariantCulture));
            request.Headers.Add(SignatureHeader, SignedRequest.Sign(key, purpose, at, method.Method, uri.AbsolutePath, body));
        }

        try
        {
            using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            return await ReadAnswerAsync(response, baseUri, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new InstanceApiException($"{uri}: {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>GET /healthz: true on 200.</summary>
    public Task<bool> HealthyAsync(Uri baseUri, CancellationToken cancellationToken) => OkAsync(new Uri(baseUri, "healthz"), cancellationToken);

    /// <summary>GET /readyz: true on 200.</summary>
    public Task<bool> ReadyAsync(Uri baseUri, CancellationToken cancellationToken) => OkAsync(new Uri(baseUri, "readyz"), cancellationToken);

    /// <summary>GET /metrics: the Prometheus text exposition.</summary>
    public async Task<string> MetricsAsync(Uri baseUri, CancellationToken cancellationToken)
    {
        try
        {
            return await http.GetStringAsync(new Uri(baseUri, "metrics"), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new InstanceApiException($"{baseUri}metrics: {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>Between managers: asks the Raft leader's manager to renew <paramref name="member"/>'s primary lease at <paramref name="epoch"/>.</summary>
    public Task<ManagerAnswer> RenewAsync(Uri leader, MemberId member, Epoch epoch, CancellationToken cancellationToken) =>
        PostSignedAsync(leader, LeasePurpose, LeaseBody(member, epoch), cancellationToken);

    /// <summary>Between managers: forwards a control command to the Raft leader's manager.</summary>
    public Task<ManagerAnswer> ForwardProposalAsync(Uri leader, ControlCommand command, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        return PostSignedAsync(leader, ProposePurpose, Convert.ToBase64String(command.Encode()), cancellationToken);
    }

    /// <summary>Between managers: tells <paramref name="peer"/> that <paramref name="member"/> fenced itself at <paramref name="epoch"/> (the peer reads its report at once).</summary>
    public Task<ManagerAnswer> AnnounceFencedAsync(Uri peer, MemberId member, Epoch epoch, CancellationToken cancellationToken) =>
        PostSignedAsync(peer, FencedPurpose, LeaseBody(member, epoch), cancellationToken);

    /// <summary>The body of a renewal (and of a fence notice): <c>ID EPOCH</c>.</summary>
    public static string LeaseBody(MemberId member, Epoch epoch) => string.Create(CultureInfo.InvariantCulture, $"{member.Value} {epoch.Value}");

    /// <summary>Parses <see cref="LeaseBody"/>; false when malformed.</summary>
    public static bool TryParseLeaseBody(string body, out MemberId member, out Epoch epoch)
    {
        ArgumentNullException.ThrowIfNull(body);
        member = MemberId.None;
        epoch = Epoch.Zero;
        var parts = body.Split(' ');
        if (parts.Length != 2
            || !ulong.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            || !ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var e))
        {
            return false;
        }

        member = new MemberId(id);
        epoch = new Epoch(e);
        return true;
    }

    /// <summary>HMAC-SHA256 of <c>PURPOSE:BODY</c> under <paramref name="key"/>, in hex.</summary>
    public static string Sign(byte[] key, string purpose, string body) =>
        Convert.ToHexString(HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(purpose + ":" + body)));

    /// <summary>Whether <paramref name="signature"/> is <paramref name="key"/>'s signature of <paramref name="body"/> for <paramref name="purpose"/> (constant time).</summary>
    public static bool Verify(byte[] key, string purpose, string body, string? signature) =>
        signature is not null && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Sign(key, purpose, body)), Encoding.ASCII.GetBytes(signature));

    private async Task<ManagerAnswer> PostSignedAsync(Uri baseUri, string purpose, string body, CancellationToken cancellationToken)
    {
        var key = clusterKey ?? throw new InvalidOperationException("this client has no cluster key: it cannot call the internal endpoints");
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUri, "internal/" + purpose))
        {
            Content = new StringContent(body, Encoding.ASCII, "text/plain"),
        };
        request.Headers.Add(SignatureHeader, Sign(key, purpose, body));
        try
        {
            using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            return await ReadAnswerAsync(response, baseUri, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new InstanceApiException($"{baseUri}internal/{purpose}: {e.GetType().Name}: {e.Message}", e);
        }
    }

    private static async Task<ManagerAnswer> ReadAnswerAsync(HttpResponseMessage response, Uri baseUri, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadFromJsonAsync<ManagerAnswer>(InstanceJson.Options, cancellationToken).ConfigureAwait(false)
                ?? new ManagerAnswer(false, $"{baseUri} answered {(int)response.StatusCode} without a body");
        }
        catch (JsonException e)
        {
            return new ManagerAnswer(false, $"{baseUri} answered {(int)response.StatusCode} with something that is not an answer: {e.Message}");
        }
    }

    private async Task<bool> OkAsync(Uri uri, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await http.GetAsync(uri, cancellationToken).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return false;
        }
    }
}
