using System.Globalization;
using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>Where a list is read from.</summary>
internal enum ListSource
{
    Unknown = 0,

    /// <summary>The latest state (a quorum read from etcd).</summary>
    Latest,

    /// <summary>The watch cache, which may be behind the latest state.</summary>
    Cache,

    /// <summary>The state exactly at a past resourceVersion (etcd's MVCC history).</summary>
    Snapshot,
}

/// <summary>A decision: read from <see cref="Source"/>, at <see cref="At"/> for a snapshot.</summary>
internal readonly record struct ListRead(ListSource Source, long At);

/// <summary>The state of the store a list decision depends on.</summary>
internal readonly record struct ListClock(long Current, long Cache, long Oldest);

/// <summary>
/// The API server's rules for <c>resourceVersion</c>, <c>resourceVersionMatch</c> and <c>continue</c> on a list
/// (kubernetes.io "API Concepts", "Semantics for get and list"; apimachinery's ListOptions validation and the
/// cacher). Pure: the store passes its clock in and serves what this returns.
/// </summary>
internal static class ListConsistency
{
    public const string Exact = "Exact";
    public const string NotOlderThan = "NotOlderThan";

    /// <param name="resourceVersion">The query's resourceVersion (null or empty when unset).</param>
    /// <param name="match">The query's resourceVersionMatch.</param>
    /// <param name="continueRv">The resourceVersion a continue token carries, when there is one.</param>
    /// <param name="clock">The latest RV, the watch cache's RV, and the oldest RV the history still holds.</param>
    public static ListRead Decide(string? resourceVersion, string? match, long? continueRv, ListClock clock)
    {
        var hasRv = !string.IsNullOrEmpty(resourceVersion);
        if (!string.IsNullOrEmpty(match))
        {
            // As ValidateListOptions: the handler answers 422 Invalid (kind ListOptions, group meta.k8s.io).
            if (!hasRv)
            {
                throw Invalid("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided");
            }

            if (continueRv is not null)
            {
                throw Invalid("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided");
            }

            if (match is not (Exact or NotOlderThan))
            {
                throw Invalid($"resourceVersionMatch: Unsupported value: \"{match}\": supported values: \"Exact\", \"NotOlderThan\", \"\"");
            }

            if (match == Exact && resourceVersion == "0")
            {
                throw Invalid("resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"");
            }
        }

        if (continueRv is { } token)
        {
            if (hasRv && resourceVersion != "0")
            {
                throw ApiError.BadRequest("specifying resource version is not allowed when using continue");
            }

            // The rest of a paged list is read at the first page's RV, so the pages are one consistent list.
            return token < clock.Oldest
                ? throw ApiError.Gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
                : new ListRead(ListSource.Snapshot, token);
        }

        if (!hasRv)
        {
            return new ListRead(ListSource.Latest, clock.Current);
        }

        if (resourceVersion == "0")
        {
            // "Any": whatever the watch cache holds, however old.
            return new ListRead(ListSource.Cache, clock.Cache);
        }

        if (!long.TryParse(resourceVersion, NumberStyles.None, CultureInfo.InvariantCulture, out var rv))
        {
            throw ApiError.BadRequest($"invalid resourceVersion \"{resourceVersion}\"");
        }

        if (rv > clock.Current)
        {
            throw TooLarge(rv, clock.Current);
        }

        if (match == Exact)
        {
            return rv < clock.Oldest
                ? throw ApiError.Gone($"too old resource version: {rv} ({clock.Oldest})")
                : new ListRead(ListSource.Snapshot, rv);
        }

        // NotOlderThan (also what an RV without a match means for a list): the cache when it has caught up with the
        // RV; otherwise the real cacher waits for it, which the double models as reading the latest state.
        return rv <= clock.Cache ? new ListRead(ListSource.Cache, clock.Cache) : new ListRead(ListSource.Latest, clock.Current);
    }

    private static ApiError Invalid(string message) =>
        new(422, "Invalid", "ListOptions.meta.k8s.io \"\" is invalid: " + message,
            details: new JsonObject { ["group"] = "meta.k8s.io", ["kind"] = "ListOptions" });

    /// <summary>storage.NewTooLargeResourceVersionError: 504 Timeout with a ResourceVersionTooLarge cause.</summary>
    private static ApiError TooLarge(long rv, long current) =>
        new(504, "Timeout", $"Too large resource version: {rv}, current: {current}",
            [new JsonObject { ["reason"] = "ResourceVersionTooLarge", ["message"] = "Too large resource version" }],
            new JsonObject { ["retryAfterSeconds"] = 1 });
}
