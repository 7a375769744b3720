using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Instance.Tests;

/// <summary>Keeps log lines in memory so a failing test can show them.</summary>
internal sealed class CapturingLogger(string name) : ILogger
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        _lines.Enqueue($"[{name}] {formatter(state, exception)}");
        while (_lines.Count > 2000)
        {
            _lines.TryDequeue(out _);
        }
    }

    /// <summary>The last <paramref name="count"/> lines, one per line.</summary>
    public string Tail(int count = 40) => string.Join('\n', _lines.TakeLast(count));
}
