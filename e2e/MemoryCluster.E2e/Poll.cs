using System.Diagnostics;

namespace MemoryCluster.E2e;

/// <summary>Waiting on a condition, never on a fixed sleep.</summary>
internal static class Poll
{
    /// <summary>Checks <paramref name="done"/> every <paramref name="period"/> until it holds; false when it did not within <paramref name="limit"/>.</summary>
    public static Task<bool> UntilAsync(Func<bool> done, TimeSpan limit, TimeSpan period, CancellationToken cancellationToken) =>
        UntilAsync(() => Task.FromResult(done()), limit, period, cancellationToken);

    /// <inheritdoc cref="UntilAsync(Func{bool}, TimeSpan, TimeSpan, CancellationToken)"/>
    public static async Task<bool> UntilAsync(Func<Task<bool>> done, TimeSpan limit, TimeSpan period, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        while (!await done())
        {
            if (watch.Elapsed > limit)
            {
                return false;
            }

            await Task.Delay(period, cancellationToken);
        }

        return true;
    }
}
