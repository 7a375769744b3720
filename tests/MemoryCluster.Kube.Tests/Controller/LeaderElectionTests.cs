using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Controller;
using MemoryCluster.Kube.Resources;

namespace MemoryCluster.Kube.Tests.Controller;

[Trait("Category", "Integration")]
public sealed class LeaderElectionTests
{
    private static LeaderElectionOptions Options(string identity) => new()
    {
        Namespace = "default",
        LeaseName = "memorycluster-operator",
        Identity = identity,
        // Short, but with room for a loaded CI machine (two cores shared by several builds).
        LeaseDuration = TimeSpan.FromSeconds(3),
        RenewDeadline = TimeSpan.FromSeconds(2),
        RetryPeriod = TimeSpan.FromMilliseconds(200),
    };

    [Fact]
    public async Task Leadership_hands_over_between_two_electors_and_the_guarded_work_never_overlaps()
    {
        await using var h = await Harness.StartAsync(installCrd: false);
        using var clientB = new KubeApiClient(new KubeClientSettings { Server = h.Server.Url });
        var a = new LeaderElector(h.Client, Options("a"));
        var b = new LeaderElector(clientB, Options("b"));
        var active = 0;
        var overlaps = 0;
        var log = new List<string>();
        Func<CancellationToken, Task> Work(string who) => async ct =>
        {
            if (Interlocked.Increment(ref active) > 1)
            {
                Interlocked.Increment(ref overlaps);
            }

            lock (log)
            {
                log.Add(who + " started");
            }

            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            }
            finally
            {
                lock (log)
                {
                    log.Add(who + " stopped");
                }

                Interlocked.Decrement(ref active);
            }
        };

        using var stopA = new CancellationTokenSource();
        using var stopB = new CancellationTokenSource();
        var runA = a.RunAsync(Work("a"), stopA.Token);
        await Eventually.TrueAsync(() => a.IsLeader, "a to lead");
        var runB = b.RunAsync(Work("b"), stopB.Token);

        // b campaigns for several lease durations while a renews: it must not take over.
        await Task.Delay(TimeSpan.FromSeconds(5));
        Assert.False(b.IsLeader);
        Assert.True(a.IsLeader);

        await stopA.CancelAsync();
        await runA.WaitAsync(TimeSpan.FromSeconds(10));
        await Eventually.TrueAsync(() => b.IsLeader, "b to take over after a released the lease");
        var lease = await h.Client.GetAsync(ResourceTypes.Lease, "default", "memorycluster-operator", CancellationToken.None);
        Assert.Equal("b", lease.Spec!.HolderIdentity);
        Assert.Equal(1, lease.Spec.LeaseTransitions);
        await stopB.CancelAsync();
        await runB.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, overlaps);
        lock (log)
        {
            Assert.Equal(["a started", "a stopped", "b started", "b stopped"], log);
        }
    }

    [Fact]
    public async Task A_leader_that_cannot_renew_steps_down_and_the_other_takes_over_after_the_lease_expires()
    {
        await using var h = await Harness.StartAsync(installCrd: false);
        var a = new LeaderElector(h.Client, Options("a"));
        using var stopA = new CancellationTokenSource();
        var stopped = false;
        var runA = a.RunAsync(async ct =>
        {
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            }
            finally
            {
                stopped = true;
            }
        }, stopA.Token);
        await Eventually.TrueAsync(() => a.IsLeader, "a to lead");

        // Every request fails for a while: a cannot renew within its deadline and must stop its work.
        h.Server.FailNextRequests(1000, 500);
        await runA.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(stopped);
        Assert.False(a.IsLeader);

        // Requests work again; b sees the record unchanged for a lease duration and takes over.
        h.Server.FailNextRequests(0, 500);
        while (true)
        {
            try
            {
                await h.Client.ListAsync(ResourceTypes.Lease, "default", null, CancellationToken.None);
                break;
            }
            catch (KubeApiException)
            {
                // Draining the injected failures.
            }
        }

        using var clientB = new KubeApiClient(new KubeClientSettings { Server = h.Server.Url });
        var b = new LeaderElector(clientB, Options("b"));
        using var stopB = new CancellationTokenSource();
        var runB = b.RunAsync(ct => Task.Delay(Timeout.InfiniteTimeSpan, ct), stopB.Token);
        await Eventually.TrueAsync(() => b.IsLeader, "b to take over the expired lease");
        await stopB.CancelAsync();
        await runB.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
