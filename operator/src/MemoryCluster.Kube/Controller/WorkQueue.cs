namespace MemoryCluster.Kube.Controller;

/// <summary>
/// client-go's rate-limited delaying work queue. Fair (FIFO) and stingy: a key added many times while it waits is
/// processed once; a key is never handed out while it is being processed; a key added while it is processed is
/// handed out again after <see cref="Done"/>.
/// </summary>
public sealed class WorkQueue<TKey> : IDisposable
    where TKey : notnull
{
    private readonly Lock _lock = new();
    private readonly Queue<TKey> _queue = new();
    private readonly HashSet<TKey> _dirty = [];
    private readonly HashSet<TKey> _processing = [];
    private readonly Dictionary<TKey, (DateTimeOffset At, ITimer Timer)> _waiting = [];
    private readonly SemaphoreSlim _available = new(0);
    private readonly CancellationTokenSource _shutdown = new();
    private readonly IRateLimiter<TKey> _limiter;
    private readonly TimeProvider _time;

    public WorkQueue(IRateLimiter<TKey>? limiter = null, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _limiter = limiter ?? MaxOfRateLimiter<TKey>.Default(_time);
    }

    /// <summary>Keys ready to be handed out.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>Keys waiting for an <see cref="AddAfter"/> delay.</summary>
    public int Waiting
    {
        get
        {
            lock (_lock)
            {
                return _waiting.Count;
            }
        }
    }

    public bool IsShutDown => _shutdown.IsCancellationRequested;

    public void Add(TKey key)
    {
        lock (_lock)
        {
            if (_shutdown.IsCancellationRequested || !_dirty.Add(key))
            {
                return;
            }

            if (_processing.Contains(key))
            {
                return;
            }

            _queue.Enqueue(key);
        }

        _available.Release();
    }

    /// <summary>Adds the key after <paramref name="delay"/>; an earlier pending time for the same key wins.</summary>
    public void AddAfter(TKey key, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Add(key);
            return;
        }

        lock (_lock)
        {
            if (_shutdown.IsCancellationRequested)
            {
                return;
            }

            var at = _time.GetUtcNow() + delay;
            if (_waiting.TryGetValue(key, out var pending))
            {
                if (pending.At <= at)
                {
                    return;
                }

                pending.Timer.Dispose();
            }

            var timer = _time.CreateTimer(_ => Fire(key, at), null, delay, Timeout.InfiniteTimeSpan);
            _waiting[key] = (at, timer);
        }
    }

    private void Fire(TKey key, DateTimeOffset at)
    {
        lock (_lock)
        {
            if (!_waiting.TryGetValue(key, out var pending) || pending.At != at)
            {
                return;
            }

            _waiting.Remove(key);
            pending.Timer.Dispose();
        }

        Add(key);
    }

    /// <summary>Adds the key after the rate limiter's delay (per-key backoff and the global bucket).</summary>
    public void AddRateLimited(TKey key) => AddAfter(key, _limiter.When(key));

    /// <summary>Clears the key's failure count (call after a success).</summary>
    public void Forget(TKey key) => _limiter.Forget(key);

    public int NumRequeues(TKey key) => _limiter.NumRequeues(key);

    /// <summary>The next key, marked as being processed; null once the queue is shut down.</summary>
    public async Task<TKey?> GetAsync(CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _shutdown.Token);
        try
        {
            await _available.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_shutdown.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return default;
        }

        lock (_lock)
        {
            var key = _queue.Dequeue();
            _dirty.Remove(key);
            _processing.Add(key);
            return key;
        }
    }

    /// <summary>Marks the key processed; if it was added meanwhile, it goes back in the queue.</summary>
    public void Done(TKey key)
    {
        lock (_lock)
        {
            _processing.Remove(key);
            if (!_dirty.Contains(key) || _shutdown.IsCancellationRequested)
            {
                return;
            }

            _queue.Enqueue(key);
        }

        _available.Release();
    }

    public void ShutDown()
    {
        lock (_lock)
        {
            _shutdown.Cancel();
            foreach (var (_, pending) in _waiting)
            {
                pending.Timer.Dispose();
            }

            _waiting.Clear();
        }
    }

    public void Dispose()
    {
        ShutDown();
        _available.Dispose();
        _shutdown.Dispose();
    }
}
