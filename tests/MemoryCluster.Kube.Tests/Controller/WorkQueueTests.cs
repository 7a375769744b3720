using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MemoryCluster.Kube.Controller;

namespace MemoryCluster.Kube.Tests.Controller;

/// <summary>A clock tests move by hand (timers are not needed by the code under test here).</summary>
internal sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

public sealed class WorkQueueTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Property]
    public void A_key_added_many_times_while_waiting_is_handed_out_once(int[] keys)
    {
        using var queue = new WorkQueue<int>();
        foreach (var key in keys)
        {
            queue.Add(key);
        }

        var handedOut = new List<int>();
        while (queue.Count > 0)
        {
            handedOut.Add(queue.GetAsync(None).GetAwaiter().GetResult());
        }

        // Fair: first-added order, each distinct key once.
        Assert.Equal(keys.Distinct(), handedOut);
    }

    /// <summary>
    /// Random Add/Get/Done sequences against a model: a key being processed is never handed out again until Done,
    /// and a key added while it was processed comes back after Done.
    /// </summary>
    [Property(MaxTest = 200)]
    public Property Processing_is_exclusive_per_key_and_re_adds_run_after_done()
    {
        var ops = Gen.ListOf(Gen.Choose(0, 2).Zip(Gen.Choose(0, 4))).ToArbitrary();
        return Prop.ForAll(ops, list =>
        {
            using var queue = new WorkQueue<int>();
            var ready = new List<int>();
            var dirty = new HashSet<int>();
            var processing = new HashSet<int>();
            foreach (var (op, key) in list)
            {
                switch (op)
                {
                    case 0:
                        queue.Add(key);
                        if (dirty.Add(key) && !processing.Contains(key))
                        {
                            ready.Add(key);
                        }

                        break;
                    case 1 when ready.Count > 0:
                        var got = queue.GetAsync(None).GetAwaiter().GetResult();
                        Assert.Equal(ready[0], got);
                        Assert.DoesNotContain(got, processing);
                        ready.RemoveAt(0);
                        dirty.Remove(got);
                        processing.Add(got);
                        break;
                    case 2 when processing.Count > 0:
                        var done = processing.Min();
                        queue.Done(done);
                        processing.Remove(done);
                        if (dirty.Contains(done))
                        {
                            ready.Add(done);
                        }

                        break;
                }

                Assert.Equal(ready.Count, queue.Count);
            }
        });
    }

    [Property]
    public void Per_key_backoff_doubles_from_5ms_to_the_cap_and_Forget_resets_it(byte failures)
    {
        var limiter = new ExponentialRateLimiter<string>(TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(1000));
        TimeSpan last = default;
        for (var i = 0; i <= failures % 40; i++)
        {
            last = limiter.When("k");
            var expected = Math.Min(5 * Math.Pow(2, i), 1_000_000);
            Assert.Equal(expected, last.TotalMilliseconds, 6);
        }

        Assert.Equal(failures % 40 + 1, limiter.NumRequeues("k"));
        Assert.Equal(TimeSpan.FromMilliseconds(5), limiter.When("other"));
        limiter.Forget("k");
        Assert.Equal(TimeSpan.FromMilliseconds(5), limiter.When("k"));
    }

    [Fact]
    public void The_token_bucket_allows_a_burst_then_the_rate()
    {
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        var bucket = new TokenBucketRateLimiter<string>(10, 100, time);
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(TimeSpan.Zero, bucket.When("k" + i));
        }

        Assert.Equal(TimeSpan.FromMilliseconds(100), bucket.When("late"));
        Assert.Equal(TimeSpan.FromMilliseconds(200), bucket.When("later"));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(TimeSpan.Zero, bucket.When("refilled"));
    }

    [Fact]
    public async Task AddAfter_delivers_the_key_later_and_the_earliest_pending_time_wins()
    {
        using var queue = new WorkQueue<string>();
        queue.AddAfter("k", TimeSpan.FromSeconds(30));
        queue.AddAfter("k", TimeSpan.FromMilliseconds(50));
        Assert.Equal(0, queue.Count);
        Assert.Equal(1, queue.Waiting);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Equal("k", await queue.GetAsync(timeout.Token));
        Assert.Equal(0, queue.Waiting);
    }

    [Fact]
    public async Task AddRateLimited_waits_longer_after_each_failure()
    {
        using var queue = new WorkQueue<string>(new ExponentialRateLimiter<string>(TimeSpan.FromMilliseconds(20), TimeSpan.FromSeconds(1)));
        queue.AddRateLimited("k");
        queue.AddRateLimited("other");
        Assert.Equal(1, queue.NumRequeues("k"));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var first = await queue.GetAsync(timeout.Token);
        queue.Done(first!);
        queue.AddRateLimited("k");
        Assert.Equal(2, queue.NumRequeues("k"));
        queue.Forget("k");
        Assert.Equal(0, queue.NumRequeues("k"));
    }

    [Fact]
    public async Task ShutDown_releases_waiting_workers_with_null()
    {
        using var queue = new WorkQueue<string>();
        var waiting = queue.GetAsync(None);
        queue.ShutDown();
        Assert.Null(await waiting.WaitAsync(TimeSpan.FromSeconds(5)));
    }
}
