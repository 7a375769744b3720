using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using MemoryCluster.Kube.Config;
using MemoryCluster.Kube.Resources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MemoryCluster.Kube.Client;

/// <summary>The REST client: HTTP/2 with keepalive pings, credentials refreshed on 401, 429 retried after Retry-After.</summary>
public sealed partial class KubeApiClient : IKubeApiClient, IDisposable
{
    private static readonly string[] ServerOwnedMetadata =
        ["resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"];

    private readonly KubeClientSettings _settings;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly List<HttpClient> _retired = [];
    private HttpClient _http;
    private X509Certificate2? _httpCertificate;

    public KubeApiClient(KubeClientSettings settings, TimeProvider? time = null, ILogger<KubeApiClient>? logger = null)
    {
        _settings = settings;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger<KubeApiClient>.Instance;
        _http = NewHttpClient(null);
    }

    public KubeClientSettings Settings => _settings;

    public void Dispose()
    {
        lock (_lock)
        {
            _http.Dispose();
            foreach (var old in _retired)
            {
                old.Dispose();
            }
        }
    }

    public async Task<T> GetAsync<T>(ResourceType<T> type, string? ns, string name, CancellationToken cancellationToken)
        where T : class
    {
        using var response = await SendAsync(HttpMethod.Get, type.ItemPath(NamespaceFor(type, ns), name), null, null, false, cancellationToken)
            .ConfigureAwait(false);
        return await ReadAsync<T>(response, type.Json, cancellationToken).ConfigureAwait(false);
    }

    public async Task<KubeList<T>> ListAsync<T>(ResourceType<T> type, string? ns, ListOptions? options, CancellationToken cancellationToken)
        where T : class
    {
        options ??= new ListOptions();
        var query = Query(
            ("labelSelector", options.LabelSelector),
            ("fieldSelector", options.FieldSelector),
            ("limit", options.Limit?.ToString(CultureInfo.InvariantCulture)),
            ("continue", options.Continue),
            ("resourceVersion", options.ResourceVersion),
            ("resourceVersionMatch", options.ResourceVersionMatch));
        using var response = await SendAsync(HttpMethod.Get, type.CollectionPath(ListNamespace(type, ns)) + query, null, null, false, cancellationToken)
            .ConfigureAwait(false);
        return await ReadAsync<KubeList<T>>(response, type.Json, cancellationToken).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(
        ResourceType<T> type, string? ns, WatchOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
        where T : class
    {
        var query = Query(
            ("watch", "true"),
            ("labelSelector", options.LabelSelector),
            ("fieldSelector", options.FieldSelector),
            ("resourceVersion", options.ResourceVersion),
            ("allowWatchBookmarks", options.AllowWatchBookmarks ? "true" : null),
            ("timeoutSeconds", options.TimeoutSeconds?.ToString(CultureInfo.InvariantCulture)));
        using var idle = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, idle.Token);
        var idleTimeout = options.IdleTimeout ?? Timeout.InfiniteTimeSpan;
        idle.CancelAfter(idleTimeout);
        using var response = await Guard(
            () => SendAsync(HttpMethod.Get, type.CollectionPath(ListNamespace(type, ns)) + query, null, null, true, linked.Token),
            idle, idleTimeout, cancellationToken).ConfigureAwait(false);
        using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (true)
        {
            idle.CancelAfter(idleTimeout);
            var line = await Guard(() => reader.ReadLineAsync(linked.Token).AsTask(), idle, idleTimeout, cancellationToken).ConfigureAwait(false);
            if (line is null)
            {
                yield break;
            }

            if (line.Length == 0)
            {
                continue;
            }

            yield return ParseEvent(type, line);
        }
    }

    internal static WatchEvent<T> ParseEvent<T>(ResourceType<T> type, string line)
        where T : class
    {
        using var document = JsonDocument.Parse(line);
        var root = document.RootElement;
        var kind = root.GetProperty("type").GetString();
        var obj = root.GetProperty("object");
        if (kind == "ERROR")
        {
            var status = KubernetesJson.Deserialize<V1Status>(obj) ?? new V1Status();
            throw KubeApiException.From((HttpStatusCode)(status.Code ?? 500), status, null);
        }

        var eventType = kind switch
        {
            "ADDED" => WatchEventType.Added,
            "MODIFIED" => WatchEventType.Modified,
            "DELETED" => WatchEventType.Deleted,
            "BOOKMARK" => WatchEventType.Bookmark,
            _ => throw new JsonException($"unknown watch event type '{kind}'"),
        };
        var value = KubernetesJson.Deserialize<T>(obj, type.Json) ?? throw new JsonException("watch event without an object");
        return new WatchEvent<T>(eventType, value, type.Metadata(value).ResourceVersion);
    }

    public Task<T> CreateAsync<T>(ResourceType<T> type, T obj, CancellationToken cancellationToken)
        where T : class =>
        WriteAsync(type, HttpMethod.Post, type.CollectionPath(NamespaceFor(type, type.Metadata(obj).NamespaceProperty)), obj, cancellationToken);

    public Task<T> ReplaceAsync<T>(ResourceType<T> type, T obj, CancellationToken cancellationToken)
        where T : class =>
        WriteAsync(type, HttpMethod.Put, PathOf(type, obj), obj, cancellationToken);

    public Task<T> ReplaceStatusAsync<T>(ResourceType<T> type, T obj, CancellationToken cancellationToken)
        where T : class =>
        WriteAsync(type, HttpMethod.Put, PathOf(type, obj) + "/status", obj, cancellationToken);

    public async Task<T> PatchAsync<T>(ResourceType<T> type, string? ns, string name, Patch patch, string? subresource, CancellationToken cancellationToken)
        where T : class
    {
        var path = type.ItemPath(NamespaceFor(type, ns), name) + (subresource is null ? "" : "/" + subresource);
        using var response = await SendAsync(HttpMethod.Patch, path, patch.Body, patch.ContentType, false, cancellationToken).ConfigureAwait(false);
        return await ReadAsync<T>(response, type.Json, cancellationToken).ConfigureAwait(false);
    }

    public async Task<ApplyResult<T>> ApplyAsync<T>(
        ResourceType<T> type, T obj, string fieldManager, bool force, string? subresource, CancellationToken cancellationToken)
        where T : class
    {
        var body = ApplyBody(type, obj, subresource);
        var path = PathOf(type, obj) + (subresource is null ? "" : "/" + subresource)
            + Query(("fieldManager", fieldManager), ("force", force ? "true" : null));
        using var response = await SendAsync(HttpMethod.Patch, path, body.ToJsonString(), "application/apply-patch+yaml", false, cancellationToken)
            .ConfigureAwait(false);
        var result = await ReadAsync<T>(response, type.Json, cancellationToken).ConfigureAwait(false);
        return new ApplyResult<T>(result, response.StatusCode == HttpStatusCode.Created);
    }

    /// <summary>
    /// The body of a server-side apply: the fields we own and nothing the server owns. Nulls are left out by both
    /// serializers, and the package's models leave collections null until set, so nothing unset is sent as [] or {}.
    /// </summary>
    internal static JsonObject ApplyBody<T>(ResourceType<T> type, T obj, string? subresource)
        where T : class
    {
        var body = BodyOf(type, obj);
        if (body["metadata"] is JsonObject meta)
        {
            foreach (var field in ServerOwnedMetadata)
            {
                meta.Remove(field);
            }
        }

        if (subresource is null)
        {
            body.Remove("status");
        }

        return body;
    }

    public async Task<T?> DeleteAsync<T>(ResourceType<T> type, string? ns, string name, V1DeleteOptions? options, CancellationToken cancellationToken)
        where T : class
    {
        var body = JsonNode.Parse(KubernetesJson.Serialize(options ?? new V1DeleteOptions { PropagationPolicy = "Background" }))!.AsObject();
        body["apiVersion"] ??= "v1";
        body["kind"] ??= "DeleteOptions";
        using var response = await SendAsync(HttpMethod.Delete, type.ItemPath(NamespaceFor(type, ns), name), body.ToJsonString(), "application/json", false, cancellationToken)
            .ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        var node = JsonNode.Parse(text);
        if (node is not JsonObject o || (string?)o["kind"] == "Status")
        {
            return null;
        }

        return KubernetesJson.Deserialize<T>(node, type.Json);
    }

    /// <summary>The object as JSON with its apiVersion and kind (the package's models leave them null until set).</summary>
    private static JsonObject BodyOf<T>(ResourceType<T> type, T obj)
        where T : class
    {
        var body = JsonNode.Parse(KubernetesJson.Serialize(obj, type.Json)) as JsonObject
            ?? throw new JsonException("an object must serialise to a JSON object");
        body["apiVersion"] = type.ApiVersion;
        body["kind"] = type.Kind;
        return body;
    }

    private async Task<T> WriteAsync<T>(ResourceType<T> type, HttpMethod method, string path, T obj, CancellationToken cancellationToken)
        where T : class
    {
        var body = BodyOf(type, obj);
        using var response = await SendAsync(method, path, body.ToJsonString(), "application/json", false, cancellationToken).ConfigureAwait(false);
        return await ReadAsync<T>(response, type.Json, cancellationToken).ConfigureAwait(false);
    }

    private static string PathOf<T>(ResourceType<T> type, T obj)
        where T : class
    {
        var meta = type.Metadata(obj);
        return type.ItemPath(NamespaceFor(type, meta.NamespaceProperty), meta.Name ?? throw new ArgumentException("metadata.name is required", nameof(obj)));
    }

    private static string? NamespaceFor<T>(ResourceType<T> type, string? ns)
        where T : class
    {
        if (!type.Namespaced)
        {
            return null;
        }

        return string.IsNullOrEmpty(ns) ? throw new ArgumentException($"{type.Kind} is namespaced: a namespace is required", nameof(ns)) : ns;
    }

    private static string? ListNamespace<T>(ResourceType<T> type, string? ns)
        where T : class => type.Namespaced ? ns : null;

    private static string Query(params (string Name, string? Value)[] parameters)
    {
        var builder = new StringBuilder();
        foreach (var (name, value) in parameters)
        {
            if (value is null)
            {
                continue;
            }

            builder.Append(builder.Length == 0 ? '?' : '&').Append(name).Append('=').Append(Uri.EscapeDataString(value));
        }

        return builder.ToString();
    }

    private static async Task<TResult> Guard<TResult>(Func<Task<TResult>> read, CancellationTokenSource idle, TimeSpan idleTimeout, CancellationToken cancellationToken)
    {
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new WatchIdleException(idleTimeout);
        }
    }

    /// <summary>Reads a response (already buffered: only watches stream) with the kind's serializer settings.</summary>
    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, JsonSerializerOptions? json, CancellationToken cancellationToken)
    {
        using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        return KubernetesJson.Deserialize<T>(stream, json) ?? throw new JsonException("the server returned null");
    }

    private async Task<HttpResponseMessage> SendAsync(
        HttpMethod method, string pathAndQuery, string? body, string? contentType, bool streaming, CancellationToken cancellationToken)
    {
        var reauthenticated = false;
        var throttled = 0;
        while (true)
        {
            var credential = await _settings.Credentials.GetAsync(cancellationToken).ConfigureAwait(false);
            var http = HttpFor(credential.ClientCertificate);
            using var request = new HttpRequestMessage(method, new Uri(_settings.Server, pathAndQuery))
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
            };
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            if (credential.Token is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", credential.Token);
            }

            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType ?? "application/json");
            }

            HttpResponseMessage response;
            if (streaming)
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                using var timeout = new CancellationTokenSource(_settings.RequestTimeout, _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
                try
                {
                    response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException e) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"{method} {pathAndQuery} took longer than {_settings.RequestTimeout}", e);
                }
            }

            if (response.IsSuccessStatusCode)
            {
                return response;
            }

            using (response)
            {
                var retryAfter = RetryAfterOf(response);
                if (response.StatusCode == HttpStatusCode.Unauthorized && !reauthenticated)
                {
                    reauthenticated = true;
                    LogReauthenticating(_logger, method.Method, pathAndQuery);
                    _settings.Credentials.Invalidate();
                    continue;
                }

                var status = await StatusOfAsync(response, cancellationToken).ConfigureAwait(false);
                retryAfter ??= status.Details?.RetryAfterSeconds is { } s ? TimeSpan.FromSeconds(s) : null;
                if (response.StatusCode == HttpStatusCode.TooManyRequests && throttled < _settings.MaxRetriesOn429)
                {
                    throttled++;
                    var wait = retryAfter ?? TimeSpan.FromSeconds(1);
                    wait = wait > _settings.MaxRetryAfter ? _settings.MaxRetryAfter : wait;
                    LogThrottled(_logger, method.Method, pathAndQuery, wait.TotalSeconds);
                    await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                throw KubeApiException.From(response.StatusCode, status, retryAfter);
            }
        }
    }

    private static TimeSpan? RetryAfterOf(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta)
        {
            return delta;
        }

        return null;
    }

    private static async Task<V1Status> StatusOfAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (KubernetesJson.Deserialize<V1Status>(text) is { Kind: "Status" } status)
            {
                return status;
            }
        }
        catch (JsonException)
        {
            // Not a Status (a proxy's HTML page, say): fall through and describe the response as it is.
        }

        return new V1Status
        {
            Kind = "Status",
            Status = "Failure",
            Code = (int)response.StatusCode,
            Reason = response.ReasonPhrase,
            Message = text.Length > 512 ? text[..512] : text,
        };
    }

    private HttpClient HttpFor(X509Certificate2? certificate)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(certificate, _httpCertificate))
            {
                // A credential plugin rotated the client certificate: new connections must present the new one.
                // The old client stays alive for watches still reading from it, and is disposed with us.
                _retired.Add(_http);
                _http = NewHttpClient(certificate);
                _httpCertificate = certificate;
            }

            return _http;
        }
    }

    private HttpClient NewHttpClient(X509Certificate2? certificate) =>
        new(TlsSettings.CreateHandler(_settings, certificate), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };

    [LoggerMessage(Level = LogLevel.Information, Message = "401 on {Method} {Path}: refreshing credentials and retrying once")]
    private static partial void LogReauthenticating(ILogger logger, string method, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "429 on {Method} {Path}: retrying after {Seconds} s")]
    private static partial void LogThrottled(ILogger logger, string method, string path, double seconds);
}
