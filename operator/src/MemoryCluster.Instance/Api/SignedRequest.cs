using System.Globalization;

namespace MemoryCluster.Instance.Api;

/// <summary>Why a signed request was refused, or <see cref="Valid"/>.</summary>
public enum SignatureCheck
{
    Unknown = 0,
    Valid = 1,

    /// <summary>No signature or no timestamp header: 401.</summary>
    Missing = 2,

    /// <summary>The signature is not the cluster key's for this purpose, request and time: 403.</summary>
    Invalid = 3,

    /// <summary>Signed too long ago, or too far in the future, for the window: 403.</summary>
    Stale = 4,

    /// <summary>The very same signature was already used within the window: 403.</summary>
    Replayed = 5,
}

/// <summary>
/// The signature of a request that changes something (a switchover, a membership change): the cluster key's
/// HMAC-SHA256 (<see cref="InstanceApiClient.Sign"/>) for the endpoint's purpose of <c>UNIXMS METHOD PATH\nBODY</c>,
/// where UNIXMS is the signer's wall clock, sent in <see cref="TimestampHeader"/>. The purpose and path bind it to one
/// endpoint and one member id, the body to one request, and the time to a window (<see cref="Window"/>) outside which
/// it is no good; within the window a manager refuses the same signature twice. Pure: the caller passes the time.
/// </summary>
public static class SignedRequest
{
    public const string TimestampHeader = "X-MemoryCluster-Timestamp";

    /// <summary>How far the signer's clock may be from the manager's, either way.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(60);

    /// <summary>The text signed for a request.</summary>
    public static string Canonical(long unixMs, string method, string path, string body) =>
        string.Create(CultureInfo.InvariantCulture, $"{unixMs} {method.ToUpperInvariant()} {path}\n{body}");

    /// <summary>The signature header's value for a request signed at <paramref name="unixMs"/>.</summary>
    public static string Sign(byte[] key, string purpose, long unixMs, string method, string path, string body) =>
        InstanceApiClient.Sign(key, purpose, Canonical(unixMs, method, path, body));

    /// <summary>Checks a request's signature and timestamp headers against the key, the purpose and the manager's clock.</summary>
    public static SignatureCheck Check(byte[] key, string purpose, string method, string path, string body, string? signature, string? timestamp, long nowUnixMs)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (string.IsNullOrEmpty(signature) || string.IsNullOrEmpty(timestamp))
        {
            return SignatureCheck.Missing;
        }

        if (!long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var at)
            || !InstanceApiClient.Verify(key, purpose, Canonical(at, method, path, body), signature))
        {
            return SignatureCheck.Invalid;
        }

        return Math.Abs(nowUnixMs - at) > (long)Window.TotalMilliseconds ? SignatureCheck.Stale : SignatureCheck.Valid;
    }

    /// <summary>The HTTP status and the message of a refusal.</summary>
    public static (int Status, string Message) Refusal(SignatureCheck check, string purpose) => check switch
    {
        SignatureCheck.Missing => (401, $"{purpose}: this endpoint changes the cluster and takes only requests signed with the cluster key (headers {InstanceApiClient.SignatureHeader} and {TimestampHeader}); nothing was changed"),
        SignatureCheck.Stale => (403, $"{purpose}: the signature's timestamp is more than {Window.TotalSeconds:0} s from this manager's clock; nothing was changed"),
        SignatureCheck.Replayed => (403, $"{purpose}: this signature was already used; sign each request anew; nothing was changed"),
        _ => (403, $"{purpose}: the signature is not the cluster key's for this request; nothing was changed"),
    };
}
