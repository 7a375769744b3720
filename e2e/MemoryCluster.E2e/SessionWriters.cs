using System.Diagnostics;
using MemoryCluster.Cli.Local;

namespace MemoryCluster.E2e;

/// <summary>A <see cref="SessionWriter"/> on every member (id ranges 1, 2, ...), started together, read together.</summary>
internal sealed class SessionWriters : IAsyncDisposable
{
    private readonly IReadOnlyList<SessionWriter> _writers;

    public SessionWriters(LocalLayout layout, string table, TimeSpan interval, TimeSpan maxDuration)
    {
        ArgumentNullException.ThrowIfNull(layout);
        _writers = [.. layout.Members.Select((m, i) => new SessionWriter(layout, m, i + 1, table, interval, maxDuration))];
    }

    public IReadOnlyList<SessionWriter> All => _writers;

    /// <summary>Every write acknowledged on any member's session.</summary>
    public IReadOnlyList<AckedWrite> Writes => [.. _writers.SelectMany(w => w.Writes)];

    /// <summary>Every insert answered with the synchronous-replication warning on any member's session.</summary>
    public IReadOnlyList<WarnedWrite> Warned => [.. _writers.SelectMany(w => w.Warned)];

    /// <summary>The members whose writer has a session open now.</summary>
    public IEnumerable<string> Open => _writers.Where(w => w.HasSession).Select(w => w.Member);

    /// <summary>Waits (bounded) until every writer has a session open; false when not within <paramref name="limit"/>.</summary>
    public async Task<bool> WaitForSessionsAsync(TimeSpan limit, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        while (!_writers.All(w => w.HasSession))
        {
            if (watch.Elapsed > limit)
            {
                return false;
            }

            await Task.Delay(50, cancellationToken);
        }

        return true;
    }

    public async Task StopAsync() => await Task.WhenAll(_writers.Select(w => w.StopAsync()));

    public async ValueTask DisposeAsync()
    {
        foreach (var writer in _writers)
        {
            await writer.DisposeAsync();
        }
    }
}
