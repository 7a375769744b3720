namespace MemoryCluster.Kube.Controller;

/// <summary>How long an item must wait before it is retried (client-go's <c>workqueue.RateLimiter</c>).</summary>
public interface IRateLimiter<in TKey>
{
    TimeSpan When(TKey key);

    void Forget(TKey key);

    int NumRequeues(TKey key);
}

/// <summary>Per key: <c>baseDelay · 2^failures</c>, capped.</summary>
public sealed class ExponentialRateLimiter<TKey>(TimeSpan baseDelay, TimeSpan maxDelay) : IRateLimiter<TKey>
    where TKey : notnull
{
    private readonly Lock _lock = new();
    private readonly Dictionary<TKey, int> _failures = [];

    public TimeSpan When(TKey key)
    {
        lock (_lock)
        {
            var failures = _failures.GetValueOrDefault(key);
            _failures[key] = failures + 1;
            var delay = baseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(failures, 62));
            return delay >= maxDelay.TotalMilliseconds ? maxDelay : TimeSpan.FromMilliseconds(delay);
        }
    }

    public void Forget(TKey key)
    {
        lock (_lock)
        {
            _failures.Remove(key);
        }
    }

    public int NumRequeues(TKey key)
    {
        lock (_lock)
        {
            return _failures.GetValueOrDefault(key);
        }
    }
}

/// <summary>A global token bucket: <paramref name="perSecond"/> tokens a second, up to <paramref name="burst"/>.</summary>
public sealed class TokenBucketRateLimiter<TKey>(double perSecond, int burst, TimeProvider time) : IRateLimiter<TKey>
{
    private readonly Lock _lock = new();
    private double _tokens = burst;
    private DateTimeOffset _last = time.GetUtcNow();

    public TimeSpan When(TKey key)
    {
        lock (_lock)
        {
            var now = time.GetUtcNow();
            _tokens = Math.Min(burst, _tokens + ((now - _last).TotalSeconds * perSecond));
            _last = now;
            _tokens -= 1;
            return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / perSecond);
        }
    }

    public void Forget(TKey key)
    {
    }

    public int NumRequeues(TKey key) => 0;
}

/// <summary>The longest wait of several limiters (client-go's <c>DefaultControllerRateLimiter</c> shape).</summary>
public sealed class MaxOfRateLimiter<TKey>(params IRateLimiter<TKey>[] limiters) : IRateLimiter<TKey>
    where TKey : notnull
{
    /// <summary>5 ms · 2^failures capped at 1000 s, and 10/s with a burst of 100.</summary>
    public static MaxOfRateLimiter<TKey> Default(TimeProvider time) => new(
        new ExponentialRateLimiter<TKey>(TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(1000)),
        new TokenBucketRateLimiter<TKey>(10, 100, time));

    public TimeSpan When(TKey key)
    {
        var max = TimeSpan.Zero;
        foreach (var limiter in limiters)
        {
            var wait = limiter.When(key);
            max = wait > max ? wait : max;
        }

        return max;
    }

    public void Forget(TKey key)
    {
        foreach (var limiter in limiters)
        {
            limiter.Forget(key);
        }
    }

    public int NumRequeues(TKey key) => limiters.Max(l => l.NumRequeues(key));
}
