using System.Collections.Concurrent;
using k8s;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Kube.Controller;

/// <summary>What changed in an informer's cache. <see cref="Old"/> is null for Added; for Deleted, <see cref="New"/> is the last state.</summary>
public sealed record InformerEvent<T>(WatchEventType Type, string Key, T? Old, T New);

/// <summary>Settings of an informer; the defaults are client-go's.</summary>
public sealed record InformerOptions
{
    /// <summary>Namespace to watch; null for all namespaces.</summary>
    public string? Namespace { get; init; }

    public string? LabelSelector { get; init; }

    public int PageSize { get; init; } = 500;

    /// <summary>Watch <c>timeoutSeconds</c> is drawn uniformly from [min, max] for every watch.</summary>
    public int MinWatchTimeoutSeconds { get; init; } = 300;

    public int MaxWatchTimeoutSeconds { get; init; } = 600;

    /// <summary>A watch with no byte for its timeout plus this margin is presumed dead and cancelled.</summary>
    public TimeSpan IdleMargin { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(800);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>After this long without a failure the backoff starts again from <see cref="InitialBackoff"/>.</summary>
    public TimeSpan BackoffResetAfter { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Drop <c>metadata.managedFields</c> from cached objects (as client-go's usual transform does): they are the
    /// largest part of most objects and a controller never reads them; the server keeps them when a write omits them.
    /// </summary>
    public bool DropManagedFields { get; init; } = true;

    /// <summary>Seed for the randomised timeouts and jitter (tests pass one to be reproducible).</summary>
    public int? Seed { get; init; }
}

/// <summary>
/// A read-only view of an informer's cache. The package's models are records with settable properties: as with
/// client-go's cache, never change an object the cache hands out; make a <c>with</c> copy, a patch or an applied object.
/// </summary>
public interface IInformer<T>
    where T : class
{
    bool HasSynced { get; }

    T? Get(string key);

    IReadOnlyCollection<T> List();

    void Subscribe(Action<InformerEvent<T>> handler);

    Task WaitForSyncAsync(CancellationToken cancellationToken);
}

/// <summary>
/// client-go's reflector and indexer in one: LIST (paged) then WATCH from the list's resourceVersion, a cache keyed
/// namespace/name, bookmarks remembered but never delivered, relist with cache replacement on 410 (as a status
/// code or an ERROR event), re-watch without relist after a normal close, a dead connection (idle watchdog) or a
/// transient error, exponential backoff with reset, and randomised watch timeouts.
/// </summary>
public sealed partial class Informer<T> : IInformer<T>
    where T : class
{
    private readonly IKubeApiClient _client;
    private readonly ResourceType<T> _type;
    private readonly InformerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Random _random;
    private readonly ConcurrentDictionary<string, T> _cache = new(StringComparer.Ordinal);
    private readonly List<Action<InformerEvent<T>>> _handlers = [];
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TimeSpan _backoff;
    private DateTimeOffset _lastFailure = DateTimeOffset.MinValue;

    public Informer(IKubeApiClient client, ResourceType<T> type, InformerOptions? options = null, TimeProvider? time = null, ILogger? logger = null)
    {
        _client = client;
        _type = type;
        _options = options ?? new InformerOptions();
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _random = _options.Seed is { } seed ? new Random(seed) : new Random();
        _backoff = _options.InitialBackoff;
    }

    public bool HasSynced => _synced.Task.IsCompleted;

    /// <summary>The resourceVersion the cache is at (from the last list, event or bookmark).</summary>
    public string? ResourceVersion { get; private set; }

    public int Lists { get; private set; }

    public int Watches { get; private set; }

    public int IdleTimeouts { get; private set; }

    public int Count => _cache.Count;

    public T? Get(string key) => _cache.TryGetValue(key, out var value) ? value : null;

    public IReadOnlyCollection<T> List() => [.. _cache.Values];

    public IReadOnlyCollection<string> Keys() => [.. _cache.Keys];

    /// <summary>Handlers run on the informer's loop, in event order; add them before <see cref="RunAsync"/>.</summary>
    public void Subscribe(Action<InformerEvent<T>> handler) => _handlers.Add(handler);

    public Task WaitForSyncAsync(CancellationToken cancellationToken) => _synced.Task.WaitAsync(cancellationToken);

    /// <summary>Runs until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var needList = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (needList)
                {
                    await ListAsync(cancellationToken).ConfigureAwait(false);
                    needList = false;
                }

                await WatchAsync(cancellationToken).ConfigureAwait(false);
                // A normal close (timeoutSeconds): watch again from the last resourceVersion, no relist.
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (GoneException e)
            {
                LogGone(_logger, _type.Kind, e.Message);
                needList = true;
                await BackoffAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (WatchIdleException e)
            {
                IdleTimeouts++;
                LogIdle(_logger, _type.Kind, e.Message);
            }
            catch (Exception e) when (e is KubeApiException or HttpRequestException or IOException or TimeoutException or System.Text.Json.JsonException)
            {
                // 429, 5xx, connection refused or reset: back off and watch again from where we were.
                LogFailure(_logger, _type.Kind, e.Message);
                await BackoffAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task BackoffAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        if (now - _lastFailure > _options.BackoffResetAfter)
        {
            _backoff = _options.InitialBackoff;
        }

        _lastFailure = now;
        var wait = _backoff * (0.5 + (_random.NextDouble() / 2));
        _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, _options.MaxBackoff.Ticks));
        try
        {
            await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    private async Task ListAsync(CancellationToken cancellationToken)
    {
        Lists++;
        var items = new Dictionary<string, T>(StringComparer.Ordinal);
        string? continueToken = null;
        string? resourceVersion;
        do
        {
            var page = await _client.ListAsync(_type, _options.Namespace, new ListOptions
            {
                LabelSelector = _options.LabelSelector,
                Limit = _options.PageSize,
                Continue = continueToken,
            }, cancellationToken).ConfigureAwait(false);
            foreach (var item in page.Items)
            {
                items[_type.KeyOf(item)] = Trim(item);
            }

            continueToken = page.Metadata.ContinueProperty;
            resourceVersion = page.Metadata.ResourceVersion;
        }
        while (!string.IsNullOrEmpty(continueToken));

        Replace(items);
        ResourceVersion = resourceVersion;
        _synced.TrySetResult();
    }

    /// <summary>Replaces the cache with a fresh list: objects that vanished are deleted, changed ones updated.</summary>
    private void Replace(Dictionary<string, T> items)
    {
        foreach (var key in _cache.Keys)
        {
            if (!items.ContainsKey(key) && _cache.TryRemove(key, out var gone))
            {
                Notify(new InformerEvent<T>(WatchEventType.Deleted, key, gone, gone));
            }
        }

        foreach (var (key, item) in items)
        {
            if (_cache.TryGetValue(key, out var old))
            {
                if (_type.Metadata(old).ResourceVersion != _type.Metadata(item).ResourceVersion)
                {
                    _cache[key] = item;
                    Notify(new InformerEvent<T>(WatchEventType.Modified, key, old, item));
                }
            }
            else
            {
                _cache[key] = item;
                Notify(new InformerEvent<T>(WatchEventType.Added, key, null, item));
            }
        }
    }

    private async Task WatchAsync(CancellationToken cancellationToken)
    {
        Watches++;
        var timeout = _random.Next(_options.MinWatchTimeoutSeconds, _options.MaxWatchTimeoutSeconds + 1);
        var options = new WatchOptions
        {
            LabelSelector = _options.LabelSelector,
            ResourceVersion = ResourceVersion,
            AllowWatchBookmarks = true,
            TimeoutSeconds = timeout,
            IdleTimeout = TimeSpan.FromSeconds(timeout) + _options.IdleMargin,
        };
        var healthySince = _time.GetUtcNow();
        await foreach (var e in _client.WatchAsync(_type, _options.Namespace, options, cancellationToken).ConfigureAwait(false))
        {
            Apply(e);
            if (_time.GetUtcNow() - healthySince > _options.BackoffResetAfter)
            {
                _backoff = _options.InitialBackoff;
            }
        }
    }

    private void Apply(WatchEvent<T> e)
    {
        if (e.Type == WatchEventType.Bookmark)
        {
            ResourceVersion = e.ResourceVersion ?? ResourceVersion;
            return;
        }

        var key = _type.KeyOf(e.Object);
        e = e with { Object = Trim(e.Object) };
        _cache.TryGetValue(key, out var old);
        switch (e.Type)
        {
            case WatchEventType.Deleted:
                _cache.TryRemove(key, out _);
                Notify(new InformerEvent<T>(WatchEventType.Deleted, key, old, e.Object));
                break;
            default:
                _cache[key] = e.Object;
                Notify(new InformerEvent<T>(old is null ? WatchEventType.Added : WatchEventType.Modified, key, old, e.Object));
                break;
        }

        ResourceVersion = e.ResourceVersion ?? ResourceVersion;
    }

    private T Trim(T obj)
    {
        var meta = _type.Metadata(obj);
        if (!_options.DropManagedFields || meta.ManagedFields is null)
        {
            return obj;
        }

        return _type.WithMetadata(obj, meta with { ManagedFields = null });
    }

    private void Notify(InformerEvent<T> e)
    {
        foreach (var handler in _handlers)
        {
            handler(e);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Kind} watch expired (410: {Reason}); relisting")]
    private static partial void LogGone(ILogger logger, string kind, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Kind} watch went silent ({Reason}); watching again")]
    private static partial void LogIdle(ILogger logger, string kind, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Kind} list/watch failed: {Reason}; backing off")]
    private static partial void LogFailure(ILogger logger, string kind, string reason);
}
