using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Kube.TestServer;

/// <summary>Settings of the double.</summary>
public sealed record FakeApiServerOptions
{
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>How often open watches that asked for bookmarks get one (the real server: about a minute).</summary>
    public TimeSpan BookmarkInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Events kept for watches; a watch from an older RV gets 410.</summary>
    public int HistoryLimit { get; init; } = 100_000;

    /// <summary>Serve HTTPS with this certificate (which must have a private key).</summary>
    public X509Certificate2? ServerCertificate { get; init; }

    /// <summary>With HTTPS: client certificates issued by this CA authenticate.</summary>
    public X509Certificate2? ClientCertificateAuthority { get; init; }

    /// <summary>When set, every request needs one of these bearer tokens or a trusted client certificate.</summary>
    public IReadOnlyCollection<string>? AcceptedTokens { get; init; }

    /// <summary>
    /// Bearer tokens of users whose requests RBAC decides, from the Roles, ClusterRoles and bindings the double holds
    /// (a refused request gets 403 Forbidden, as from the real server). Other requests are a cluster admin's.
    /// </summary>
    public IReadOnlyDictionary<string, RbacUser>? Users { get; init; }

    /// <summary>
    /// When set, Services get a cluster IP from this network, as the real server allocates them (one machine's
    /// Kubernetes uses a loopback network, where its proxy listens); when null, none is assigned.
    /// </summary>
    public System.Net.IPNetwork? ServiceNetwork { get; init; }

    /// <summary>
    /// Where a container's log comes from for <c>GET pods/NAME/log</c> (namespace, pod, pod uid, container; null when
    /// the container has no log yet), as the real server asks the pod's kubelet; when null, the subresource is 404.
    /// </summary>
    public Func<string, string, string, string, string?>? PodLogs { get; init; }
}

/// <summary>
/// An in-process Kubernetes API server for tests: the real REST protocol (discovery, CRUD, patch, apply, status,
/// watch, tables) over Kestrel on 127.0.0.1, with faults that can be injected into watches and requests.
/// </summary>
public sealed partial class FakeApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ApiStore _store;
    private readonly FakeApiServerOptions _options;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private readonly Queue<(int Code, int? RetryAfter)> _failures = new();
    private readonly Dictionary<string, int> _requestCounts = [];
    private readonly List<int> _watchTimeouts = [];
    private readonly List<string> _bearerTokens = [];
    private readonly List<string> _clientCertificates = [];
    private readonly List<string> _forbidden = [];

    // Tokens issued through serviceaccounts/NAME/token (TokenRequest), as the users they name.
    private readonly Dictionary<string, RbacUser> _issued = [];
    private HashSet<string> _tokens;

    // The user whose request is being served (null: a cluster admin); read by the admission of RBAC objects.
    private readonly AsyncLocal<RbacUser?> _user = new();
    private Task _bookmarks = Task.CompletedTask;

    private FakeApiServer(WebApplication app, FakeApiServerOptions options)
    {
        _app = app;
        _options = options;
        _store = new ApiStore(options.Time, options.HistoryLimit);
        _tokens = options.AcceptedTokens is null ? [] : [.. options.AcceptedTokens];
        _store.ServiceNetwork = options.ServiceNetwork;
        if (options.Users is not null)
        {
            _store.Admission = AdmitRbac;
        }
    }

    public Uri Url { get; private set; } = new("http://127.0.0.1/");

    /// <summary>The latest resourceVersion the server has handed out.</summary>
    public long ResourceVersion => _store.ResourceVersion;

    public static async Task<FakeApiServer> StartAsync(FakeApiServerOptions? options, CancellationToken cancellationToken)
    {
        options ??= new FakeApiServerOptions();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                if (options.ServerCertificate is { } certificate)
                {
                    listen.UseHttps(https =>
                    {
                        https.ServerCertificate = certificate;
                        if (options.ClientCertificateAuthority is { } ca)
                        {
                            https.ClientCertificateMode = ClientCertificateMode.AllowCertificate;
                            https.ClientCertificateValidation = (client, _, _) => IssuedBy(client, ca);
                        }
                    });
                }
            });
        });
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        var server = new FakeApiServer(app, options);
        app.Run(server.HandleAsync);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Url = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        server._bookmarks = server.BookmarkLoopAsync(server._stopping.Token);
        return server;
    }

    private static bool IssuedBy(X509Certificate2 client, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(client);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var watcher in _store.Watchers())
        {
            await watcher.Abort.CancelAsync().ConfigureAwait(false);
        }

        try
        {
            await _bookmarks.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The loop ends by cancellation.
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task BookmarkLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(_options.BookmarkInterval, _options.Time, cancellationToken).ConfigureAwait(false);
            _store.SendBookmarks();
        }
    }

    // ---- faults and test hooks ----

    /// <summary>The next <paramref name="count"/> requests fail with <paramref name="code"/> (and Retry-After seconds).</summary>
    public void FailNextRequests(int count, int code, int? retryAfterSeconds = null)
    {
        lock (_lock)
        {
            for (var i = 0; i < count; i++)
            {
                _failures.Enqueue((code, retryAfterSeconds));
            }
        }
    }

    /// <summary>Open watches get a 410 ERROR event in their stream and end.</summary>
    public void ExpireWatches() => _store.ExpireWatches();

    /// <summary>Old resourceVersions are compacted away: watching or continuing from them gets 410.</summary>
    public void Compact() => _store.Compact();

    /// <summary>Open watch connections are dropped without a clean end.</summary>
    public void DropWatches()
    {
        foreach (var watcher in _store.Watchers())
        {
            _store.Unwatch(watcher);
            watcher.Abort.Cancel();
        }
    }

    /// <summary>Open watches stop sending anything but stay open, like a connection that died silently.</summary>
    public void StallWatches()
    {
        foreach (var watcher in _store.Watchers())
        {
            watcher.Stalled = true;
        }
    }

    /// <summary>A restart with a new resourceVersion history: watches cut, every object re-versioned.</summary>
    public void Restart()
    {
        foreach (var watcher in _store.Restart())
        {
            watcher.Abort.Cancel();
        }
    }

    /// <summary>
    /// Fault: the watch cache stops following the store, so lists it serves (<c>resourceVersion=0</c>, or an RV it
    /// has reached) return the state of now, stale, until <see cref="ThawWatchCache"/>.
    /// </summary>
    public void FreezeWatchCache() => _store.FreezeWatchCache();

    public void ThawWatchCache() => _store.ThawWatchCache();

    public int OpenWatches => _store.Watchers().Count;

    /// <summary>How many requests of a kind ("LIST pods", "WATCH memoryclusters", "PUT leases") were served.</summary>
    public int RequestCount(string verbAndPlural)
    {
        lock (_lock)
        {
            return _requestCounts.GetValueOrDefault(verbAndPlural);
        }
    }

    /// <summary>Every write served so far (POST, PUT, PATCH, DELETE), by "VERB plural[/subresource]".</summary>
    public IReadOnlyDictionary<string, int> Writes()
    {
        lock (_lock)
        {
            return _requestCounts.Where(c => c.Key.Split(' ')[0] is "POST" or "PUT" or "PATCH" or "DELETE").ToDictionary(c => c.Key, c => c.Value);
        }
    }

    /// <summary>The <c>timeoutSeconds</c> of every watch opened so far.</summary>
    public IReadOnlyList<int> WatchTimeouts
    {
        get
        {
            lock (_lock)
            {
                return [.. _watchTimeouts];
            }
        }
    }

    /// <summary>The message of every request RBAC refused so far, in order.</summary>
    public IReadOnlyList<string> Forbidden403s
    {
        get
        {
            lock (_lock)
            {
                return [.. _forbidden];
            }
        }
    }

    /// <summary>Every bearer token presented so far, in order.</summary>
    public IReadOnlyList<string> BearerTokens
    {
        get
        {
            lock (_lock)
            {
                return [.. _bearerTokens];
            }
        }
    }

    /// <summary>The subject of every client certificate a request came with, in order.</summary>
    public IReadOnlyList<string> ClientCertificates
    {
        get
        {
            lock (_lock)
            {
                return [.. _clientCertificates];
            }
        }
    }

    public void SetAcceptedTokens(params string[] tokens)
    {
        lock (_lock)
        {
            _tokens = [.. tokens];
        }
    }

    /// <summary>A kubeconfig for this server (plain HTTP unless the server has a certificate).</summary>
    public string KubeconfigYaml(string? token = null, string ns = "default", string? certificateAuthorityPem = null)
    {
        var builder = new StringBuilder();
        builder.Append(CultureInfo.InvariantCulture, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: fake
              cluster:
                server: {Url.ToString().TrimEnd('/')}
            """).Append('\n');
        if (certificateAuthorityPem is not null)
        {
            builder.Append(CultureInfo.InvariantCulture, $"    certificate-authority-data: {Convert.ToBase64String(Encoding.UTF8.GetBytes(certificateAuthorityPem))}\n");
        }

        builder.Append("""
            users:
            - name: fake
              user:
            """).Append('\n');
        builder.Append(token is null ? "    {}\n" : $"    token: {token}\n");
        builder.Append(CultureInfo.InvariantCulture, $"""
            contexts:
            - name: fake
              context:
                cluster: fake
                user: fake
                namespace: {ns}
            current-context: fake
            """).Append('\n');
        return builder.ToString();
    }

    // ---- HTTP ----

    private async Task HandleAsync(HttpContext context)
    {
        try
        {
            await RouteAsync(context).ConfigureAwait(false);
        }
        catch (ApiError e)
        {
            if (!context.Response.HasStarted)
            {
                await WriteAsync(context, e.Code, e.ToStatus()).ConfigureAwait(false);
            }
        }
        catch (JsonException e)
        {
            if (!context.Response.HasStarted)
            {
                await WriteAsync(context, 400, ApiError.BadRequest("the body is not valid JSON: " + e.Message).ToStatus()).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested || _stopping.IsCancellationRequested)
        {
            // The client went away or the server is stopping.
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or NullReferenceException or FormatException or KeyNotFoundException)
        {
            // A bug in the double: answer as the real server answers its own bugs, with the cause in the message.
            if (!context.Response.HasStarted)
            {
                await WriteAsync(context, 500, new ApiError(500, "InternalError", e.ToString()).ToStatus()).ConfigureAwait(false);
            }
        }
    }

    private async Task RouteAsync(HttpContext context)
    {
        var request = context.Request;
        (int Code, int? RetryAfter)? failure = null;
        lock (_lock)
        {
            if (_failures.Count > 0)
            {
                failure = _failures.Dequeue();
            }
        }

        if (failure is { } f)
        {
            if (f.RetryAfter is { } seconds)
            {
                context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            }

            var reason = f.Code == 429 ? "TooManyRequests" : f.Code >= 500 ? "InternalError" : "BadRequest";
            throw new ApiError(f.Code, reason, "injected failure", details: f.RetryAfter is { } r ? new JsonObject { ["retryAfterSeconds"] = r } : null);
        }

        Authenticate(context);
        var segments = request.Path.Value!.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
        switch (segments)
        {
            case ["version"]:
                await WriteAsync(context, 200, new JsonObject
                {
                    ["major"] = "1",
                    ["minor"] = "32",
                    ["gitVersion"] = "v1.32.0-memorycluster-double",
                    ["platform"] = "linux/amd64",
                }).ConfigureAwait(false);
                return;
            case ["healthz"] or ["readyz"] or ["livez"]:
                context.Response.ContentType = "text/plain";
                await context.Response.WriteAsync("ok", context.RequestAborted).ConfigureAwait(false);
                return;
            case ["api"]:
                await WriteAsync(context, 200, new JsonObject
                {
                    ["kind"] = "APIVersions",
                    ["versions"] = new JsonArray("v1"),
                    ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = Url.Authority }),
                }).ConfigureAwait(false);
                return;
            case ["apis"]:
                await WriteAsync(context, 200, Discovery.Groups(_store.Resources())).ConfigureAwait(false);
                return;
            case ["api", var v]:
                await WriteAsync(context, 200, Discovery.ResourceList("", v, _store.Resources())).ConfigureAwait(false);
                return;
            case ["openapi", "v3"]:
                await WriteAsync(context, 200, Discovery.OpenApiRoot(_store.Resources())).ConfigureAwait(false);
                return;
            case ["openapi", "v3", "api", var v]:
                await WriteAsync(context, 200, Discovery.OpenApiGroupVersion("", v, _store.Resources())).ConfigureAwait(false);
                return;
            case ["openapi", "v3", "apis", var g, var v]:
                await WriteAsync(context, 200, Discovery.OpenApiGroupVersion(g, v, _store.Resources())).ConfigureAwait(false);
                return;
            case ["apis", var g, var v]:
                if (!_store.Resources().Any(r => r.Group == g && r.Version == v))
                {
                    throw new ApiError(404, "NotFound", "the server could not find the requested resource");
                }

                await WriteAsync(context, 200, Discovery.ResourceList(g, v, _store.Resources())).ConfigureAwait(false);
                return;
            case ["api", var v, .. var rest]:
                await ResourceAsync(context, "", v, rest).ConfigureAwait(false);
                return;
            case ["apis", var g, var v, .. var rest]:
                await ResourceAsync(context, g, v, rest).ConfigureAwait(false);
                return;
            default:
                throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        }
    }

    private void Authenticate(HttpContext context)
    {
        lock (_lock)
        {
            var presented = context.Request.Headers.Authorization.ToString();
            if (presented.StartsWith("Bearer ", StringComparison.Ordinal))
            {
                _bearerTokens.Add(presented["Bearer ".Length..]);
            }

            if (context.Connection.ClientCertificate is { } certificate)
            {
                _clientCertificates.Add(certificate.Subject);
            }

            _user.Value = null;
            if (presented.StartsWith("Bearer ", StringComparison.Ordinal)
                && (_options.Users?.GetValueOrDefault(presented["Bearer ".Length..]) ?? _issued.GetValueOrDefault(presented["Bearer ".Length..])) is { } user)
            {
                _user.Value = user;
                return;
            }

            if (_options.AcceptedTokens is null)
            {
                return;
            }

            var header = context.Request.Headers.Authorization.ToString();
            if (header.StartsWith("Bearer ", StringComparison.Ordinal) && _tokens.Contains(header["Bearer ".Length..]))
            {
                return;
            }
        }

        if (context.Connection.ClientCertificate is not null)
        {
            return;
        }

        throw new ApiError(401, "Unauthorized", "Unauthorized");
    }

    private static string RbacVerb(string verb, string? name) => verb switch
    {
        "WATCH" => "watch",
        "LIST" => "list",
        "GET" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => name is null ? "deletecollection" : "delete",
        _ => verb.ToLowerInvariant(),
    };

    private RbacPolicy Policy() => new(
        _store.All("rbac.authorization.k8s.io", "roles"),
        _store.All("rbac.authorization.k8s.io", "clusterroles"),
        _store.All("rbac.authorization.k8s.io", "rolebindings"),
        _store.All("rbac.authorization.k8s.io", "clusterrolebindings"));

    private void Authorize(RbacRequest request)
    {
        if (_user.Value is { } user && !Policy().Allows(user, request))
        {
            throw Forbidden(request.ForbiddenMessage(user), request);
        }
    }

    // A refusal, kept for Forbidden403s.
    private ApiError Forbidden(string message, RbacRequest request)
    {
        lock (_lock)
        {
            _forbidden.Add(message);
        }

        var details = new JsonObject { ["group"] = request.ApiGroup, ["kind"] = request.Resource };
        if (request.Name is { } name)
        {
            details["name"] = name;
        }

        return new ApiError(403, "Forbidden", message, details: details);
    }

    // The real server's escalation check: a user may write a role only with rules it holds itself, and bind a role
    // only when it holds that role's rules (or may "bind" it).
    private void AdmitRbac(ResourceInfo resource, JsonObject obj)
    {
        if (_user.Value is not { } user || resource.Group != "rbac.authorization.k8s.io")
        {
            return;
        }

        var policy = Policy();
        var ns = (string?)obj["metadata"]?["namespace"];
        var name = (string?)obj["metadata"]?["name"] ?? "";
        var request = new RbacRequest("create", resource.Group, resource.Plural, null, ns, name);
        ApiError Refused(string why) => Forbidden($"{resource.Plural}.{resource.Group} \"{name}\" is forbidden: {why}", request);
        const string NotHeld = "is attempting to grant RBAC permissions not currently held";
        switch (resource.Kind)
        {
            case "Role" or "ClusterRole":
                if (!policy.Allows(user, request with { Verb = "escalate" }) && policy.FirstNotHeld(user, obj, ns) is { } rule)
                {
                    throw Refused($"user \"{user.Name}\" {NotHeld}: {rule}");
                }

                break;
            case "RoleBinding" or "ClusterRoleBinding":
                var refKind = (string?)obj["roleRef"]?["kind"] ?? "";
                var refName = (string?)obj["roleRef"]?["name"] ?? "";

                // In the binding's namespace (none for a ClusterRoleBinding): cluster-wide rights count there too.
                if (policy.Allows(user, new RbacRequest("bind", resource.Group, refKind == "Role" ? "roles" : "clusterroles", null, ns, refName)))
                {
                    break;
                }

                if (policy.RoleOf(obj, ns) is not { } role)
                {
                    throw Refused($"the {refKind} \"{refName}\" it binds does not exist, and user \"{user.Name}\" may not bind it");
                }

                if (policy.FirstNotHeld(user, role, ns) is { } missing)
                {
                    throw Refused($"user \"{user.Name}\" {NotHeld}: {missing}");
                }

                break;
        }
    }

    private async Task ResourceAsync(HttpContext context, string group, string version, string[] rest)
    {
        string? ns = null;
        if (rest is ["namespaces", var n, _, ..])
        {
            ns = n;
            rest = rest[2..];
        }

        var resource = rest.Length > 0 ? _store.Find(group, version, rest[0]) : null;
        if (resource is null || (ns is not null && !resource.Namespaced))
        {
            throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        }

        var name = rest.Length > 1 ? rest[1] : null;
        var subresource = rest.Length > 2 ? rest[2] : null;
        var tokenRequest = subresource == "token" && resource is { Group: "", Plural: "serviceaccounts" };
        var logRequest = subresource == "log" && resource is { Group: "", Plural: "pods" } && _options.PodLogs is not null;
        if (subresource is not null && !tokenRequest && !logRequest && (subresource != "status" || !resource.HasStatus))
        {
            throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        }

        var query = context.Request.Query;
        var method = context.Request.Method;
        var manager = query["fieldManager"].FirstOrDefault() ?? UserAgentManager(context);
        var table = context.Request.Headers.Accept.ToString().Contains("as=Table", StringComparison.Ordinal);
        var verb = method switch
        {
            "GET" when name is null && IsTrue(query["watch"]) => "WATCH",
            "GET" when name is null => "LIST",
            _ => method,
        };
        // A namespace is, for RBAC, in itself: a RoleBinding in "foo" may grant get on namespace "foo".
        var rbacNamespace = resource is { Group: "", Plural: "namespaces" } && name is not null ? name : ns;
        var rbacRequest = new RbacRequest(RbacVerb(verb, name), resource.Group, resource.Plural, subresource, rbacNamespace, name);
        Authorize(rbacRequest);
        if (_user.Value is not null && verb == "PATCH" && subresource is null
            && context.Request.ContentType?.StartsWith("application/apply-patch+yaml", StringComparison.Ordinal) == true && !_store.Contains(resource, ns, name!))
        {
            // An apply that creates the object is also a create, as on the real server.
            Authorize(rbacRequest with { Verb = "create" });
        }

        lock (_lock)
        {
            var key = verb + " " + resource.Plural + (subresource is null ? "" : "/" + subresource);
            _requestCounts[key] = _requestCounts.GetValueOrDefault(key) + 1;
        }

        switch (verb)
        {
            case "POST" when tokenRequest && name is not null:
                await WriteAsync(context, 201, IssueToken(ns!, name, await ReadBodyAsync(context).ConfigureAwait(false) as JsonObject)).ConfigureAwait(false);
                return;
            case "WATCH":
                await WatchAsync(context, resource, ns, table).ConfigureAwait(false);
                return;
            case "LIST":
                var (items, rv, next, remaining) = _store.List(resource, ns, Selector.ParseLabels(query["labelSelector"]),
                    Selector.ParseLabels(query["fieldSelector"]), int.TryParse(query["limit"], out var l) ? l : null, query["continue"],
                    query["resourceVersion"], query["resourceVersionMatch"]);
                if (table)
                {
                    await WriteAsync(context, 200, Tables.Table(resource, items, rv, true, _options.Time.GetUtcNow())).ConfigureAwait(false);
                    return;
                }

                var listMeta = new JsonObject { ["resourceVersion"] = rv };
                if (next is not null)
                {
                    listMeta["continue"] = next;
                    listMeta["remainingItemCount"] = remaining;
                }

                await WriteAsync(context, 200, new JsonObject
                {
                    ["kind"] = resource.ListKind,
                    ["apiVersion"] = resource.GroupVersion,
                    ["metadata"] = listMeta,
                    ["items"] = new JsonArray([.. items]),
                }).ConfigureAwait(false);
                return;
            case "GET" when logRequest && name is not null:
                await WriteLogAsync(context, ns!, name, _store.Get(resource, ns!, name)).ConfigureAwait(false);
                return;
            case "GET" when subresource is null || subresource == "status":
                var obj = _store.Get(resource, ns, name!);
                await WriteAsync(context, 200, table ? Tables.Table(resource, [obj], (string)obj["metadata"]!["resourceVersion"]!, true, _options.Time.GetUtcNow()) : obj)
                    .ConfigureAwait(false);
                return;
            case "POST" when name is null:
                var body = await ReadBodyAsync(context).ConfigureAwait(false) as JsonObject ?? throw ApiError.BadRequest("the body must be an object");
                var (created, _) = _store.Create(resource, ns, body, manager);
                await WriteAsync(context, 201, created).ConfigureAwait(false);
                return;
            case "PUT" when name is not null:
                var replacement = await ReadBodyAsync(context).ConfigureAwait(false) as JsonObject ?? throw ApiError.BadRequest("the body must be an object");
                await WriteAsync(context, 200, _store.Replace(resource, ns, name, subresource, replacement, manager)).ConfigureAwait(false);
                return;
            case "PATCH" when name is not null:
                var contentType = context.Request.ContentType?.Split(';')[0].Trim() ?? "";
                var patch = await ReadBodyAsync(context).ConfigureAwait(false);
                if (contentType == "application/apply-patch+yaml")
                {
                    if (query["fieldManager"].FirstOrDefault() is not { Length: > 0 } applier)
                    {
                        throw ApiError.BadRequest("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch");
                    }

                    var (applied, wasCreated) = _store.Apply(resource, ns, name, subresource,
                        patch as JsonObject ?? throw ApiError.BadRequest("an apply body must be an object"), applier, IsTrue(query["force"]));
                    await WriteAsync(context, wasCreated ? 201 : 200, applied).ConfigureAwait(false);
                    return;
                }

                await WriteAsync(context, 200, _store.Patch(resource, ns, name, subresource, contentType, patch, manager)).ConfigureAwait(false);
                return;
            case "DELETE" when name is not null && subresource is null:
                var options = context.Request.ContentLength is > 0 || context.Request.Headers.TransferEncoding.Count > 0
                    ? await ReadBodyAsync(context).ConfigureAwait(false) as JsonObject
                    : null;
                options ??= [];
                if (query["propagationPolicy"].FirstOrDefault() is { } policy)
                {
                    options["propagationPolicy"] = policy;
                }

                await WriteAsync(context, 200, _store.Delete(resource, ns, name, options)).ConfigureAwait(false);
                return;
            default:
                throw new ApiError(405, "MethodNotAllowed", $"the server does not allow this method on the requested resource");
        }
    }

    /// <summary>
    /// A bearer token for the ServiceAccount <paramref name="name"/> (which must exist: else a 404 <see cref="ApiError"/>):
    /// from then on its requests are that ServiceAccount's, decided by RBAC. What TokenRequest answers with.
    /// </summary>
    public string IssueToken(string ns, string name)
    {
        _store.Get(_store.Find("", "v1", "serviceaccounts")!, ns, name);
        var token = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        lock (_lock)
        {
            _issued[token] = RbacUser.ServiceAccount(ns, name);
        }

        return token;
    }

    /// <summary>
    /// TokenRequest, as the kubelet asks for a pod's token: a bearer token for the ServiceAccount (which must exist),
    /// after which its requests are that ServiceAccount's, decided by RBAC.
    /// </summary>
    private JsonObject IssueToken(string ns, string name, JsonObject? request)
    {
        var token = IssueToken(ns, name);
        var seconds = (long?)request?["spec"]?["expirationSeconds"] ?? 3600;
        return new JsonObject
        {
            ["kind"] = "TokenRequest",
            ["apiVersion"] = "authentication.k8s.io/v1",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns },
            ["spec"] = new JsonObject { ["audiences"] = request?["spec"]?["audiences"]?.DeepClone(), ["expirationSeconds"] = seconds },
            ["status"] = new JsonObject
            {
                ["token"] = token,
                ["expirationTimestamp"] = Serialization.KubeJson.FormatTime(_options.Time.GetUtcNow().AddSeconds(seconds)),
            },
        };
    }

    private static string UserAgentManager(HttpContext context)
    {
        var agent = context.Request.Headers.UserAgent.ToString();
        var slash = agent.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 ? agent[..slash] : agent.Length > 0 ? agent : "unknown";
    }

    private static bool IsTrue(Microsoft.Extensions.Primitives.StringValues value) =>
        value.FirstOrDefault() is "true" or "1";

    private static async Task<JsonNode?> ReadBodyAsync(HttpContext context)
    {
        if (context.Request.ContentType?.StartsWith("application/vnd.kubernetes.protobuf", StringComparison.Ordinal) == true)
        {
            // kubectl create and run send built-in kinds as protobuf; apply sends JSON or YAML.
            throw new ApiError(415, "UnsupportedMediaType",
                "this API server (the test double) reads JSON and YAML only, not protobuf: use kubectl apply (or kubectl create --save-config -o yaml --dry-run=client | kubectl apply -f -)");
        }

        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        return JsonNode.Parse(text);
    }

    private async Task WatchAsync(HttpContext context, ResourceInfo resource, string? ns, bool table)
    {
        var query = context.Request.Query;
        var watcher = _store.Watch(resource, ns, Selector.ParseLabels(query["labelSelector"]), Selector.ParseLabels(query["fieldSelector"]),
            query["resourceVersion"].FirstOrDefault(), IsTrue(query["allowWatchBookmarks"]));
        var timeout = int.TryParse(query["timeoutSeconds"], out var seconds) && seconds > 0 ? TimeSpan.FromSeconds(seconds) : TimeSpan.FromMinutes(30);
        lock (_lock)
        {
            _watchTimeouts.Add(seconds);
        }

        using var ends = new CancellationTokenSource(timeout, _options.Time);
        using var cut = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, watcher.Abort.Token, _stopping.Token);
        using var any = CancellationTokenSource.CreateLinkedTokenSource(cut.Token, ends.Token);
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        await context.Response.StartAsync(context.RequestAborted).ConfigureAwait(false);
        var first = true;
        try
        {
            while (await watcher.Events.WaitToReadAsync(any.Token).ConfigureAwait(false))
            {
                while (watcher.Events.TryRead(out var item))
                {
                    if (watcher.Stalled)
                    {
                        // A silent stall: nothing more is sent, and the stream does not end on its own.
                        await Task.Delay(Timeout.InfiniteTimeSpan, cut.Token).ConfigureAwait(false);
                    }

                    if (table && (string?)item["type"] is not ("ERROR" or "BOOKMARK"))
                    {
                        var obj = (JsonObject)item["object"]!;
                        item["object"] = Tables.Table(resource, [obj], (string)obj["metadata"]!["resourceVersion"]!, first, _options.Time.GetUtcNow());
                        first = false;
                    }

                    await context.Response.WriteAsync(item.ToJsonString() + "\n", cut.Token).ConfigureAwait(false);
                }

                await context.Response.Body.FlushAsync(cut.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ends.IsCancellationRequested && !cut.IsCancellationRequested)
        {
            // timeoutSeconds elapsed: the watch ends cleanly, as the real server's does.
        }
        catch (OperationCanceledException) when (watcher.Abort.IsCancellationRequested)
        {
            context.Abort();
        }
        finally
        {
            _store.Unwatch(watcher);
        }
    }

    /// <summary>
    /// <c>GET pods/NAME/log</c> as the real server answers it: plain text; <c>container</c> may be left out only for a
    /// pod of one container; <c>tailLines</c> keeps the last lines; <c>previous</c> is not kept here (400).
    /// </summary>
    private async Task WriteLogAsync(HttpContext context, string ns, string name, JsonObject pod)
    {
        var query = context.Request.Query;
        var containers = (pod["spec"]?["containers"] as JsonArray ?? []).Select(c => (string?)c?["name"]).OfType<string>().ToList();
        var container = query["container"].FirstOrDefault();
        if (string.IsNullOrEmpty(container))
        {
            container = containers.Count == 1
                ? containers[0]
                : throw ApiError.BadRequest($"a container name must be specified for pod {name}, choose one of: [{string.Join(" ", containers)}]");
        }
        else if (!containers.Contains(container))
        {
            throw ApiError.BadRequest($"container {container} is not valid for pod {name}");
        }

        if (IsTrue(query["previous"]))
        {
            throw ApiError.BadRequest($"previous terminated container \"{container}\" in pod \"{name}\" not found");
        }

        var text = _options.PodLogs!(ns, name, (string?)pod["metadata"]?["uid"] ?? "", container)
            ?? throw ApiError.BadRequest($"container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating");
        if (int.TryParse(query["tailLines"], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var tail))
        {
            var lines = text.Split('\n');
            var kept = lines.Length > 0 && lines[^1].Length == 0 ? lines[..^1] : lines;
            text = string.Concat(kept.Skip(Math.Max(0, kept.Length - tail)).Select(l => l + "\n"));
        }

        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/plain";
        await context.Response.WriteAsync(text, context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task WriteAsync(HttpContext context, int code, JsonNode body)
    {
        context.Response.StatusCode = code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted).ConfigureAwait(false);
    }
}
