using System.Collections.Concurrent;

namespace MemoryCluster.Raft;

/// <summary>
/// The host's inbox, read by one thread of its own: any thread posts an action, the loop thread runs them in order.
/// A post wakes that thread directly (when it sleeps) instead of queuing the loop to the thread pool, which on a
/// quiet host woke two or three pool threads per message.
/// </summary>
internal sealed class Mailbox : IDisposable
{
    private readonly ConcurrentQueue<Action> _queue = new();

    // No spinning before sleeping: a post comes every few milliseconds at most on an idle host.
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
    private volatile bool _closed;

    /// <summary>Queues <paramref name="action"/>; false once the mailbox is closed.</summary>
    public bool TryPost(Action action)
    {
        if (_closed)
        {
            return false;
        }

        _queue.Enqueue(action);
        try
        {
            _wake.Set();
        }
        catch (ObjectDisposedException)
        {
            // Closed and disposed meanwhile: the action is dropped, as any posted after closing.
            return false;
        }

        return true;
    }

    /// <summary>Stops taking posts and wakes the reader.</summary>
    public void Close()
    {
        _closed = true;
        _wake.Set();
    }

    /// <summary>
    /// On the loop thread: waits until something was posted (or the mailbox closed), at most
    /// <paramref name="timeoutMs"/>, then takes up to <paramref name="max"/> actions into <paramref name="batch"/> (none
    /// when the time ran out). False once closed and empty.
    /// </summary>
    public bool WaitAndTake(List<Action> batch, int max, int timeoutMs, CancellationToken cancellationToken)
    {
        batch.Clear();
        while (true)
        {
            // Reset before looking: a post after the look sets the event again, so none is missed.
            _wake.Reset();
            while (batch.Count < max && _queue.TryDequeue(out var action))
            {
                batch.Add(action);
            }

            if (batch.Count > 0)
            {
                if (!_queue.IsEmpty)
                {
                    _wake.Set();
                }

                return true;
            }

            if (_closed)
            {
                return false;
            }

            if (!_wake.Wait(timeoutMs, cancellationToken))
            {
                return true;
            }

            timeoutMs = 0;
        }
    }

    public void Dispose() => _wake.Dispose();
}
