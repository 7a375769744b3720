using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Kube.Controller;

/// <summary>Settings of a Lease election; the durations are client-go's defaults.</summary>
public sealed record LeaderElectionOptions
{
    public required string Namespace { get; init; }

    public required string LeaseName { get; init; }

    /// <summary>Who we are (the pod name, usually).</summary>
    public required string Identity { get; init; }

    /// <summary>How long others wait, from when they last saw the lease change, before taking it over.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>A leader that has not renewed for this long steps down.</summary>
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often to try to acquire or renew.</summary>
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// client-go's Lease lock: create (409 = someone else won) or take over a lease whose record has not changed for
/// <c>LeaseDuration</c> by our own clock; renew every retry period; step down when a renewal has not succeeded within
/// the renew deadline. The guarded work is stopped (and awaited) before the lease is released. Kept instead of the
/// package's <c>k8s.LeaderElection.LeaderElector</c>, which does not release the lease when cancelled (the next
/// leader waits out the whole lease duration) and does not wait for the guarded work to stop.
/// </summary>
public sealed partial class LeaderElector(IKubeApiClient client, LeaderElectionOptions options, TimeProvider? time = null, ILogger? logger = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly Random _random = new();
    private V1LeaseSpec? _observed;
    private DateTimeOffset _observedAt;
    private V1Lease? _current;
    private volatile bool _isLeader;

    // When the last acquire or renew that succeeded began (monotonic; long.MinValue: never).
    private long _heldFrom = long.MinValue;

    public bool IsLeader => _isLeader;

    /// <summary>
    /// True only while this replica leads and its last successful acquire or renew began less than the renew
    /// deadline ago by its own monotonic clock (<see cref="LeaseValidity.Holds"/>). A process that was frozen
    /// (SIGSTOP, a stalled node) past that sees false the moment it runs again, before its renew loop has noticed
    /// anything: a guard for every write of the guarded work (<see cref="LeaseGuardedClient"/>).
    /// </summary>
    public bool HoldsLease
    {
        get
        {
            var from = Interlocked.Read(ref _heldFrom);
            return LeaseValidity.Holds(_isLeader, from == long.MinValue ? null : _time.GetElapsedTime(from), options.RenewDeadline);
        }
    }

    /// <summary>
    /// Campaigns until this instance leads, runs <paramref name="onLeading"/> while it does, and returns when
    /// leadership is lost or <paramref name="cancellationToken"/> is cancelled (then releasing the lease). Returns
    /// without leading if cancelled while campaigning.
    /// </summary>
    public async Task RunAsync(Func<CancellationToken, Task> onLeading, CancellationToken cancellationToken)
    {
        try
        {
            while (!await TryAcquireOrRenewAsync(cancellationToken).ConfigureAwait(false))
            {
                await Task.Delay(Jitter(options.RetryPeriod), _time, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped before ever leading.
            return;
        }

        _isLeader = true;
        LogAcquired(_logger, options.Identity, options.LeaseName);
        using var leading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var work = onLeading(leading.Token);
        try
        {
            await RenewLoopAsync(work, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // IMPORTANT: stop the guarded work before anyone else can lead: cancel it and wait for it to finish,
            // and only then release the lease (or let it expire).
            _isLeader = false;
            await leading.CancelAsync().ConfigureAwait(false);
            try
            {
                await work.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The guarded work ends by cancellation.
            }

            if (cancellationToken.IsCancellationRequested)
            {
                await ReleaseAsync().ConfigureAwait(false);
            }

            LogLost(_logger, options.Identity, options.LeaseName);
        }
    }

    private async Task RenewLoopAsync(Task work, CancellationToken cancellationToken)
    {
        var lastRenew = _time.GetUtcNow();
        while (!cancellationToken.IsCancellationRequested && !work.IsCompleted)
        {
            try
            {
                await Task.WhenAny(work, Task.Delay(options.RetryPeriod, _time, cancellationToken)).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (work.IsCompleted || cancellationToken.IsCancellationRequested)
            {
                return;
            }

            bool renewed;
            try
            {
                using var deadline = new CancellationTokenSource(options.RenewDeadline - (_time.GetUtcNow() - lastRenew), _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
                renewed = await TryAcquireOrRenewAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                renewed = false;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ArgumentOutOfRangeException)
            {
                renewed = false;
            }

            if (renewed)
            {
                lastRenew = _time.GetUtcNow();
            }
            else if (_time.GetUtcNow() - lastRenew >= options.RenewDeadline)
            {
                return;
            }
        }
    }

    /// <summary>One attempt: true when this instance holds the lease afterwards.</summary>
    internal async Task<bool> TryAcquireOrRenewAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var held = await TryAcquireOrRenewOnceAsync(cancellationToken).ConfigureAwait(false);
        if (held)
        {
            Interlocked.Exchange(ref _heldFrom, started);
        }

        return held;
    }

    private async Task<bool> TryAcquireOrRenewOnceAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        try
        {
            V1Lease lease;
            try
            {
                lease = await client.GetAsync(ResourceTypes.Lease, options.Namespace, options.LeaseName, cancellationToken).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                _current = await client.CreateAsync(ResourceTypes.Lease, new V1Lease
                {
                    Metadata = new V1ObjectMeta { Name = options.LeaseName, NamespaceProperty = options.Namespace },
                    Spec = new V1LeaseSpec
                    {
                        HolderIdentity = options.Identity,
                        LeaseDurationSeconds = (int)options.LeaseDuration.TotalSeconds,
                        AcquireTime = now.UtcDateTime,
                        RenewTime = now.UtcDateTime,
                        LeaseTransitions = 0,
                    },
                }, cancellationToken).ConfigureAwait(false);
                Observe(_current.Spec, now);
                return true;
            }

            // The package's models are records: a LeaseSpec (scalars only) compares by value.
            var spec = lease.Spec ?? new V1LeaseSpec();
            if (_observed is null || !_observed.Equals(spec))
            {
                Observe(spec, now);
            }

            var held = !string.IsNullOrEmpty(spec.HolderIdentity) && spec.HolderIdentity != options.Identity;
            if (held && _observedAt + LeaseDurationOf(spec) > now)
            {
                return false;
            }

            var mine = spec.HolderIdentity == options.Identity;
            var next = spec with
            {
                HolderIdentity = options.Identity,
                LeaseDurationSeconds = (int)options.LeaseDuration.TotalSeconds,
                RenewTime = now.UtcDateTime,
                AcquireTime = mine ? spec.AcquireTime : now.UtcDateTime,
                LeaseTransitions = mine ? spec.LeaseTransitions : (spec.LeaseTransitions ?? 0) + 1,
            };
            _current = await client.ReplaceAsync(ResourceTypes.Lease, lease with { Spec = next }, cancellationToken).ConfigureAwait(false);
            Observe(_current.Spec, now);
            return true;
        }
        catch (KubeApiException e) when (e is ConflictException or AlreadyExistsException)
        {
            // Someone else created or updated the lease first: not ours this round.
            return false;
        }
        catch (Exception e) when (e is KubeApiException or HttpRequestException or IOException or TimeoutException)
        {
            LogError(_logger, options.LeaseName, e.Message);
            return false;
        }
    }

    private TimeSpan LeaseDurationOf(V1LeaseSpec spec) =>
        spec.LeaseDurationSeconds is { } s ? TimeSpan.FromSeconds(s) : options.LeaseDuration;

    private void Observe(V1LeaseSpec spec, DateTimeOffset now)
    {
        _observed = spec;
        _observedAt = now;
    }

    private async Task ReleaseAsync()
    {
        if (_current is not { Spec.HolderIdentity: var holder } || holder != options.Identity)
        {
            return;
        }

        using var timeout = new CancellationTokenSource(options.RenewDeadline, _time);
        try
        {
            var now = _time.GetUtcNow();
            await client.ReplaceAsync(ResourceTypes.Lease, _current with
            {
                Spec = _current.Spec with { HolderIdentity = "", LeaseDurationSeconds = 1, RenewTime = now.UtcDateTime },
            }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is KubeApiException or HttpRequestException or IOException or OperationCanceledException)
        {
            // The lease will expire on its own.
            LogError(_logger, options.LeaseName, e.Message);
        }
    }

    private TimeSpan Jitter(TimeSpan period) => period * (1 + (_random.NextDouble() * 0.2));

    [LoggerMessage(Level = LogLevel.Information, Message = "{Identity} acquired lease {Lease}")]
    private static partial void LogAcquired(ILogger logger, string identity, string lease);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Identity} stopped leading on lease {Lease}")]
    private static partial void LogLost(ILogger logger, string identity, string lease);

    [LoggerMessage(Level = LogLevel.Warning, Message = "lease {Lease}: {Reason}")]
    private static partial void LogError(ILogger logger, string lease, string reason);

}

/// <summary>Whether a leader may still act on its lease. Pure.</summary>
public static class LeaseValidity
{
    /// <summary>
    /// A leader holds its lease for the renew deadline after the start of its last successful acquire or renew
    /// (null: none yet). Counting from the start, not the answer, keeps it inside what the others allow: they take
    /// the lease over only once its record has stood unchanged for the whole lease duration by their clocks, and
    /// the record cannot have changed before the request that wrote it was sent. The renew deadline is shorter than
    /// the lease duration by the margin for clock rates.
    /// </summary>
    public static bool Holds(bool leading, TimeSpan? sinceRenewStarted, TimeSpan renewDeadline) =>
        leading && sinceRenewStarted is { } since && since >= TimeSpan.Zero && since < renewDeadline;
}
