using MemoryCluster.Instance.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// Admits a request to an endpoint that changes something only when the cluster key signed it
/// (<see cref="SignedRequest"/>) within the window, and not twice: the signatures admitted in the last window are
/// remembered (a few per minute at most; pruned as they age).
/// </summary>
internal sealed partial class SignatureGuard(byte[] key, TimeProvider time, ILogger logger)
{
    private const int MaxBodyBytes = 64 * 1024;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, long> _seen = new(StringComparer.Ordinal);

    /// <summary>The request's body when it is signed and fresh; otherwise the refusal to send (and nothing is done).</summary>
    public async Task<(string Body, IResult? Refused)> AdmitAsync(HttpRequest request, string purpose, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.ContentLength > MaxBodyBytes)
        {
            return (string.Empty, Answer(413, $"{purpose}: the body is larger than {MaxBodyBytes} bytes"));
        }

        using var reader = new StreamReader(request.Body);
        var body = await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        var signature = request.Headers[InstanceApiClient.SignatureHeader].FirstOrDefault();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var check = SignedRequest.Check(key, purpose, request.Method, request.Path.Value ?? "/", body, signature, request.Headers[SignedRequest.TimestampHeader].FirstOrDefault(), now);
        if (check == SignatureCheck.Valid && !FirstUse(signature!, now))
        {
            check = SignatureCheck.Replayed;
        }

        if (check == SignatureCheck.Valid)
        {
            return (body, null);
        }

        Log.Refused(logger, request.Method, request.Path.Value ?? "/", check);
        var (status, message) = SignedRequest.Refusal(check, purpose);
        return (string.Empty, Answer(status, message));
    }

    private bool FirstUse(string signature, long now)
    {
        var window = (long)SignedRequest.Window.TotalMilliseconds;
        lock (_gate)
        {
            foreach (var old in _seen.Where(s => now - s.Value > 2 * window).Select(s => s.Key).ToList())
            {
                _seen.Remove(old);
            }

            return _seen.TryAdd(signature, now);
        }
    }

    private static IResult Answer(int status, string message) => Results.Json(new ManagerAnswer(false, message), InstanceJson.Options, statusCode: status);

    private static partial class Log
    {
        [LoggerMessage(150, LogLevel.Warning, "refused {Method} {Path}: signature {Check}")]
        public static partial void Refused(ILogger logger, string method, string path, SignatureCheck check);
    }
}

/// <summary>Maps the endpoints that change something, each behind the <see cref="SignatureGuard"/>.</summary>
internal static class SignedEndpoints
{
    /// <summary>Maps <paramref name="method"/> <paramref name="pattern"/>: the handler runs only for a signed request, with its body.</summary>
    public static RouteHandlerBuilder MapSigned(this IEndpointRouteBuilder app, string method, string pattern, string purpose, SignatureGuard guard, Func<string, HttpContext, CancellationToken, Task<IResult>> handle)
    {
        ArgumentNullException.ThrowIfNull(guard);
        ArgumentNullException.ThrowIfNull(handle);
        return app.MapMethods(pattern, [method], async (HttpContext context, CancellationToken ct) =>
        {
            var (body, refused) = await guard.AdmitAsync(context.Request, purpose, ct).ConfigureAwait(false);
            return refused ?? await handle(body, context, ct).ConfigureAwait(false);
        });
    }
}
