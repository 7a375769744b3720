using System.Net;
using k8s.Models;

namespace MemoryCluster.Kube.Client;

/// <summary>An error the API server returned as a <c>Status</c>.</summary>
public class KubeApiException(HttpStatusCode code, V1Status status)
    : Exception($"{(int)code} {status.Reason}: {status.Message}")
{
    public HttpStatusCode StatusCode { get; } = code;

    public V1Status Status { get; } = status;

    public string? Reason => Status.Reason;

    /// <summary>Maps a status code (and reason) to the most specific exception.</summary>
    public static KubeApiException From(HttpStatusCode code, V1Status status, TimeSpan? retryAfter) => (int)code switch
    {
        401 => new UnauthorizedException(status),
        403 => new ForbiddenException(status),
        404 => new NotFoundException(status),
        409 when status.Reason == "AlreadyExists" => new AlreadyExistsException(status),
        409 => new ConflictException(status),
        410 => new GoneException(status),
        422 => new InvalidException(status),
        429 => new TooManyRequestsException(status, retryAfter),
        _ => new KubeApiException(code, status),
    };
}

public sealed class NotFoundException(V1Status status) : KubeApiException(HttpStatusCode.NotFound, status);

public sealed class AlreadyExistsException(V1Status status) : KubeApiException(HttpStatusCode.Conflict, status);

/// <summary>409 on a stale resourceVersion (or a failed precondition, or a server-side apply conflict).</summary>
public sealed class ConflictException(V1Status status) : KubeApiException(HttpStatusCode.Conflict, status);

/// <summary>410: the resourceVersion or continue token is too old; relist.</summary>
public sealed class GoneException(V1Status status) : KubeApiException(HttpStatusCode.Gone, status);

public sealed class ForbiddenException(V1Status status) : KubeApiException(HttpStatusCode.Forbidden, status);

public sealed class UnauthorizedException(V1Status status) : KubeApiException(HttpStatusCode.Unauthorized, status);

/// <summary>422: the object failed validation; <see cref="Causes"/> says which fields and why.</summary>
public sealed class InvalidException(V1Status status) : KubeApiException(HttpStatusCode.UnprocessableEntity, status)
{
    public IReadOnlyList<V1StatusCause> Causes => Status.Details?.Causes?.ToList() ?? [];
}

/// <summary>429 after the client's own retries; <see cref="RetryAfter"/> is the server's last advice.</summary>
public sealed class TooManyRequestsException(V1Status status, TimeSpan? retryAfter)
    : KubeApiException(HttpStatusCode.TooManyRequests, status)
{
    public TimeSpan? RetryAfter { get; } = retryAfter;
}

/// <summary>A watch delivered no byte for longer than its idle timeout: the connection is presumed dead.</summary>
public sealed class WatchIdleException(TimeSpan idle) : Exception($"watch received nothing for {idle.TotalSeconds:0.#} s");
