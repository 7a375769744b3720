using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using MemoryCluster.Kube.Serialization;

namespace MemoryCluster.Kube.TestServer;

/// <summary>
/// The state of the double: objects, a global resourceVersion counter, an event history for watches, field
/// managers, and the garbage collector. One lock serialises every write, so watch events leave in commit order.
/// </summary>
internal sealed class ApiStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, ResourceInfo> _resources = [];
    private readonly Dictionary<string, SortedDictionary<string, Stored>> _objects = [];
    private readonly Dictionary<string, (ResourceInfo Resource, string Key)> _byUid = [];
    private readonly List<HistoryEntry> _history = [];
    private readonly List<Watcher> _watchers = [];
    private readonly TimeProvider _time;
    private long _rv = 100;
    private long _oldestWatchable = 100;
    private int _historyLimit;
    private Dictionary<string, SortedDictionary<string, JsonObject>>? _cache;
    private long? _cacheRv;

    public ApiStore(TimeProvider time, int historyLimit)
    {
        _time = time;
        _historyLimit = historyLimit;
        foreach (var r in ResourceInfo.BuiltIn)
        {
            Register(r);
        }
    }

    public long ResourceVersion
    {
        get
        {
            lock (_lock)
            {
                return _rv;
            }
        }
    }

    public int HistoryLimit
    {
        get => _historyLimit;
        set
        {
            lock (_lock)
            {
                _historyLimit = value;
            }
        }
    }

    public List<ResourceInfo> Resources()
    {
        lock (_lock)
        {
            return [.. _resources.Values];
        }
    }

    public ResourceInfo? Find(string group, string version, string plural)
    {
        lock (_lock)
        {
            return _resources.TryGetValue(group + "/" + plural, out var r) && r.Version == version ? r : null;
        }
    }

    private void Register(ResourceInfo resource)
    {
        _resources[resource.Id] = resource;
        _objects.TryAdd(resource.Id, new SortedDictionary<string, Stored>(StringComparer.Ordinal));
    }

    /// <summary>Called with each object about to be created or updated, after its validation; throws to refuse the write.</summary>
    public Action<ResourceInfo, JsonObject>? Admission { get; set; }

    /// <summary>When set, a Service made without a cluster IP gets one from this network (see <see cref="ServiceAddresses"/>).</summary>
    public System.Net.IPNetwork? ServiceNetwork { get; set; }

    /// <summary>Every stored object of a resource (by group and plural), in every namespace; none when it is not served.</summary>
    public List<JsonObject> All(string group, string plural)
    {
        lock (_lock)
        {
            return _objects.TryGetValue(group + "/" + plural, out var objects) ? [.. objects.Values.Select(Render)] : [];
        }
    }

    // ---- reads ----

    /// <summary>Whether the object exists (without rendering it).</summary>
    public bool Contains(ResourceInfo r, string? ns, string name)
    {
        lock (_lock)
        {
            return Lookup(r, ns, name) is not null;
        }
    }

    public JsonObject Get(ResourceInfo r, string? ns, string name)
    {
        lock (_lock)
        {
            return Render(Lookup(r, ns, name) ?? throw ApiError.NotFound(r.Plural, name));
        }
    }

    /// <summary>
    /// A page of the list, read where <see cref="ListConsistency"/> says (latest, watch cache, or a past RV); the
    /// continue token carries the RV it was read at and the last key, so later pages read the same state.
    /// </summary>
    public (List<JsonObject> Items, string ResourceVersion, string? Continue, long? Remaining) List(
        ResourceInfo r, string? ns, Selector labels, Selector fields, int? limit, string? continueToken, string? resourceVersion, string? match)
    {
        lock (_lock)
        {
            string? after = null;
            long? continueRv = null;
            if (!string.IsNullOrEmpty(continueToken))
            {
                (var tokenRv, after) = DecodeContinue(continueToken);
                continueRv = tokenRv;
            }

            var read = ListConsistency.Decide(resourceVersion, match, continueRv, new ListClock(_rv, _cacheRv ?? _rv, _oldestWatchable));
            var items = new List<JsonObject>();
            string? next = null;
            long remaining = 0;
            foreach (var (key, obj, render) in StateAt(r, read))
            {
                if (after is not null && string.CompareOrdinal(key, after) <= 0)
                {
                    continue;
                }

                if (!InNamespace(obj, ns) || !labels.Matches(Selector.LabelsOf(obj)) || !fields.Matches(Selector.FieldsOf(obj)))
                {
                    continue;
                }

                if (limit is { } l && l > 0 && items.Count >= l)
                {
                    remaining++;
                    next ??= EncodeContinue(read.At, Key(items[^1]));
                    continue;
                }

                items.Add(render());
            }

            return (items, read.At.ToString(CultureInfo.InvariantCulture), next, next is null ? null : remaining);
        }
    }

    /// <summary>The objects of one resource in key order, as they were at <paramref name="read"/>, rendered on demand.</summary>
    private IEnumerable<(string Key, JsonObject Object, Func<JsonObject> Render)> StateAt(ResourceInfo r, ListRead read)
    {
        if (read.Source == ListSource.Cache && _cache is not null)
        {
            return _cache.TryGetValue(r.Id, out var cached)
                ? cached.Select(c => (c.Key, c.Value, (Func<JsonObject>)(() => (JsonObject)c.Value.DeepClone())))
                : [];
        }

        if (read.Source != ListSource.Snapshot || read.At >= _rv)
        {
            return _objects[r.Id].Select(s => (s.Key, s.Value.Object, (Func<JsonObject>)(() => Render(s.Value)))).ToList();
        }

        // Undo the history after the RV, newest first: what was created is removed, the rest is put back as it was.
        var state = new SortedDictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var (key, stored) in _objects[r.Id])
        {
            state[key] = Render(stored);
        }

        for (var i = _history.Count - 1; i >= 0 && _history[i].Rv > read.At; i--)
        {
            var entry = _history[i];
            if (entry.Resource.Id != r.Id)
            {
                continue;
            }

            if (entry.Before is null)
            {
                state.Remove(entry.Key);
            }
            else
            {
                state[entry.Key] = entry.Before;
            }
        }

        return state.Select(c => (c.Key, c.Value, (Func<JsonObject>)(() => (JsonObject)c.Value.DeepClone())));
    }

    private static string Key(JsonObject obj) =>
        ((string?)obj["metadata"]?["namespace"] ?? "") + "/" + (string?)obj["metadata"]?["name"];

    private static string EncodeContinue(long rv, string last) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(new JsonObject { ["rv"] = rv, ["start"] = last }.ToJsonString()));

    private static (long Rv, string Last) DecodeContinue(string token)
    {
        try
        {
            var node = JsonNode.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(token)));
            return ((long)node!["rv"]!, (string)node["start"]!);
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException or NullReferenceException or InvalidOperationException)
        {
            throw ApiError.BadRequest("continue key is not valid");
        }
    }

    private static bool InNamespace(JsonObject obj, string? ns) =>
        string.IsNullOrEmpty(ns) || (string?)obj["metadata"]?["namespace"] == ns;

    // ---- writes ----

    public (JsonObject Object, bool Created) Create(ResourceInfo r, string? ns, JsonObject body, string manager)
    {
        lock (_lock)
        {
            var obj = (JsonObject)body.DeepClone();
            var meta = Meta(obj);
            if (string.IsNullOrEmpty((string?)meta["name"]) && meta["generateName"] is JsonValue gn)
            {
                meta["name"] = (string?)gn + Guid.NewGuid().ToString("N")[..5];
            }

            var name = (string?)meta["name"];
            if (string.IsNullOrEmpty(name))
            {
                throw ApiError.Invalid(r.Kind, "", "metadata.name", "Required value: name or generateName is required");
            }

            if (r.Namespaced)
            {
                var bodyNs = (string?)meta["namespace"];
                if (!string.IsNullOrEmpty(bodyNs) && bodyNs != ns)
                {
                    throw ApiError.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
                }

                meta["namespace"] = ns;
            }
            else
            {
                meta.Remove("namespace");
            }

            if (Lookup(r, ns, name) is not null)
            {
                throw ApiError.AlreadyExists(r.Plural, name);
            }

            Pruning.Prune(r.Schema, obj);
            ValidateCommon(r, obj, name);
            Admission?.Invoke(r, obj);
            if (r is { Group: "", Plural: "secrets" })
            {
                FoldStringData(obj);
            }

            if (ServiceNetwork is { } network && r is { Group: "", Plural: "services" })
            {
                ServiceAddresses.Assign(obj, network, _objects[r.Id].Values.Select(v => (string?)v.Object["spec"]?["clusterIP"]));
            }

            obj["apiVersion"] = r.GroupVersion;
            obj["kind"] = r.Kind;
            meta["uid"] = Guid.NewGuid().ToString();
            meta["creationTimestamp"] = KubeJson.FormatTime(_time.GetUtcNow());
            meta["generation"] = 1;
            meta.Remove("deletionTimestamp");
            meta.Remove("resourceVersion");
            meta.Remove("managedFields");
            if (r.HasStatus && r.IsCustom)
            {
                // Writes to the object ignore .status when a status subresource exists, even on create.
                obj.Remove("status");
            }

            Defaults.Apply(r.Schema, obj);
            if (r.Kind == "CustomResourceDefinition" && r.Group == "apiextensions.k8s.io")
            {
                EstablishCrd(obj);
            }

            var stored = new Stored(r, obj);
            stored.Managers[manager] = new ManagerEntry("Update", [.. JsonTree.Leaves(obj, ListTypes.For(r)).Keys]);
            Commit(stored, "ADDED");
            _objects[r.Id][StoreKey(ns, name)] = stored;
            _byUid[(string)meta["uid"]!] = (r, StoreKey(ns, name));
            return (Render(stored), true);
        }
    }

    private static void ValidateCommon(ResourceInfo r, JsonObject obj, string name)
    {
        if (name.Length > 253 || !System.Text.RegularExpressions.Regex.IsMatch(name, "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))
        {
            throw ApiError.Invalid(r.Kind, name, "metadata.name",
                $"Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'");
        }

        if (r.Schema is { } schema)
        {
            Validation.Validate(r.Kind, name, schema, obj);
        }
    }

    private void EstablishCrd(JsonObject crd)
    {
        var infos = ResourceInfo.FromCrd(crd).ToList();
        foreach (var info in infos)
        {
            Register(info);
        }

        var now = KubeJson.FormatTime(_time.GetUtcNow());
        crd["status"] = new JsonObject
        {
            ["acceptedNames"] = crd["spec"]?["names"]?.DeepClone(),
            ["conditions"] = new JsonArray(
                Condition("NamesAccepted", "NoConflicts", "no conflicts found", now),
                Condition("Established", "InitialNamesAccepted", "the initial names have been accepted", now)),
            ["storedVersions"] = new JsonArray([.. infos.Select(i => (JsonNode)JsonValue.Create(i.Version))]),
        };
    }

    private static JsonObject Condition(string type, string reason, string message, string now) => new()
    {
        ["type"] = type,
        ["status"] = "True",
        ["lastTransitionTime"] = now,
        ["reason"] = reason,
        ["message"] = message,
    };

    /// <summary>PUT: the body replaces the object (or, on the status subresource, its status).</summary>
    public JsonObject Replace(ResourceInfo r, string? ns, string name, string? subresource, JsonObject body, string manager)
    {
        lock (_lock)
        {
            var stored = Lookup(r, ns, name) ?? throw ApiError.NotFound(r.Plural, name);
            var rv = (string?)body["metadata"]?["resourceVersion"];
            if (string.IsNullOrEmpty(rv))
            {
                throw ApiError.Invalid(r.Kind, name, "metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update");
            }

            if ((string?)body["metadata"]?["name"] is { } bodyName && bodyName != name)
            {
                throw ApiError.BadRequest("the name of the object does not match the name on the URL");
            }

            return Update(stored, subresource, body, rv, manager, null);
        }
    }

    /// <summary>PATCH with a merge, JSON or (for built-ins only) strategic merge patch.</summary>
    public JsonObject Patch(ResourceInfo r, string? ns, string name, string? subresource, string contentType, JsonNode? patch, string manager)
    {
        lock (_lock)
        {
            var stored = Lookup(r, ns, name) ?? throw ApiError.NotFound(r.Plural, name);
            JsonNode? patched = contentType switch
            {
                "application/merge-patch+json" => JsonTree.MergePatch(stored.Object, patch),
                "application/strategic-merge-patch+json" when !r.IsCustom => JsonTree.MergePatch(stored.Object, patch),
                "application/json-patch+json" => JsonTree.JsonPatch(stored.Object, patch as JsonArray ?? throw ApiError.BadRequest("a JSON patch is an array")),
                _ => throw new ApiError(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"),
            };
            if (patched is not JsonObject result)
            {
                throw ApiError.BadRequest("a patch must leave an object");
            }

            // A patch that sets metadata.resourceVersion is conditional on it.
            var requested = (string?)result["metadata"]?["resourceVersion"];
            return Update(stored, subresource, result, requested, manager, null);
        }
    }

    /// <summary>Server-side apply: <paramref name="manager"/> owns exactly the fields it sent.</summary>
    public (JsonObject Object, bool Created) Apply(ResourceInfo r, string? ns, string name, string? subresource, JsonObject applied, string manager, bool force)
    {
        lock (_lock)
        {
            if (applied["metadata"]?["managedFields"] is not null)
            {
                throw ApiError.BadRequest("metadata.managedFields must be nil");
            }

            // What the schema drops is not applied, so nobody comes to own it.
            applied = (JsonObject)applied.DeepClone();
            Pruning.Prune(r.Schema, applied);

            var stored = Lookup(r, ns, name);
            if (stored is null)
            {
                if (subresource is not null)
                {
                    throw ApiError.NotFound(r.Plural, name);
                }

                var meta = Meta(applied);
                meta["name"] ??= name;
                var created = Create(r, ns, applied, manager);
                var fresh = Lookup(r, ns, name)!;
                fresh.Managers.Clear();
                fresh.Managers[manager] = new ManagerEntry("Apply", [.. JsonTree.Leaves(applied, ListTypes.For(r)).Keys]);
                return (Render(fresh), created.Created);
            }

            var types = ListTypes.For(r);
            var newPaths = JsonTree.Leaves(applied, types);
            if (subresource == "status")
            {
                newPaths = newPaths.Where(p => p.Key.StartsWith("/status/", StringComparison.Ordinal)).ToDictionary();
            }
            else if (r.HasStatus)
            {
                newPaths = newPaths.Where(p => !p.Key.StartsWith("/status/", StringComparison.Ordinal) && p.Key != "/status").ToDictionary();
            }

            var conflicts = new JsonArray();
            foreach (var (path, value) in newPaths)
            {
                foreach (var (other, entry) in stored.Managers)
                {
                    // An entry of a map or set list is shared by everyone who applies it: only its fields can conflict.
                    if (other != manager && entry.Paths.Contains(path) && !JsonTree.IsEntry(path) && !JsonNode.DeepEquals(JsonTree.At(stored.Object, path), value))
                    {
                        conflicts.Add(new JsonObject
                        {
                            ["reason"] = "FieldManagerConflict",
                            ["message"] = $"conflict with \"{other}\" using {r.GroupVersion}",
                            ["field"] = path.Replace('/', '.'),
                        });
                    }
                }
            }

            if (conflicts.Count > 0 && !force)
            {
                throw new ApiError(409, "Conflict", $"Apply failed with {conflicts.Count} conflict(s)", conflicts,
                    new JsonObject { ["name"] = name, ["kind"] = r.Plural });
            }

            var result = (JsonObject)stored.Object.DeepClone();
            var previous = stored.Managers.TryGetValue(manager, out var mine) ? mine.Paths : [];
            var others = stored.Managers.Where(m => m.Key != manager).SelectMany(m => m.Value.Paths).ToHashSet(StringComparer.Ordinal);
            foreach (var path in previous.OrderBy(p => p.Length))
            {
                if (newPaths.ContainsKey(path) || others.Contains(path))
                {
                    continue;
                }

                // A list entry stays while another manager owns a field in it; its fields this manager owned go.
                if (JsonTree.IsEntry(path) && others.Any(o => o.StartsWith(path + "/", StringComparison.Ordinal)))
                {
                    continue;
                }

                // A field (or list entry) this manager stopped sending, that nobody else owns, is removed.
                JsonTree.RemoveLeaf(result, path);
            }

            var toMerge = (JsonObject)applied.DeepClone();
            toMerge.Remove("apiVersion");
            toMerge.Remove("kind");
            if (toMerge["metadata"] is JsonObject am)
            {
                am.Remove("resourceVersion");
                am.Remove("name");
                am.Remove("namespace");
            }

            JsonTree.MergeInto(result, toMerge, types);
            var managers = stored.Managers.ToDictionary(m => m.Key, m => m.Value with { Paths = [.. m.Value.Paths] });
            foreach (var (other, entry) in managers)
            {
                if (other == manager)
                {
                    continue;
                }

                foreach (var path in newPaths.Keys)
                {
                    if (force && !JsonTree.IsEntry(path) && !JsonNode.DeepEquals(JsonTree.At(stored.Object, path), newPaths[path]))
                    {
                        entry.Paths.Remove(path);
                    }
                }
            }

            managers[manager] = new ManagerEntry("Apply", [.. newPaths.Keys]);
            return (Update(stored, subresource, result, null, manager, managers), false);
        }
    }

    /// <summary>The one write path: RV precondition, status subresource rules, generation, finalizers, no-op detection.</summary>
    private JsonObject Update(Stored stored, string? subresource, JsonObject body, string? expectedRv, string manager, Dictionary<string, ManagerEntry>? managers)
    {
        var r = stored.Resource;
        var name = (string)stored.Object["metadata"]!["name"]!;
        if (expectedRv is not null && expectedRv != (string?)stored.Object["metadata"]!["resourceVersion"])
        {
            throw ApiError.Conflict(r.Plural + "." + r.Group, name, "the object has been modified; please apply your changes to the latest version and try again");
        }

        var old = stored.Object;
        JsonObject next;
        if (subresource == "status")
        {
            next = (JsonObject)old.DeepClone();
            var status = body["status"]?.DeepClone();
            Pruning.PruneField(r.Schema, "status", status);
            SetOrRemove(next, "status", status);
        }
        else if (subresource is not null)
        {
            throw ApiError.NotFound(r.Plural + "/" + subresource, name);
        }
        else
        {
            next = (JsonObject)body.DeepClone();
            if (r.HasStatus)
            {
                SetOrRemove(next, "status", old["status"]);
            }

            var meta = Meta(next);
            var oldMeta = Meta(old);
            foreach (var field in new[] { "uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name", "resourceVersion" })
            {
                SetOrRemove(meta, field, oldMeta[field]);
            }

            meta.Remove("managedFields");
            if (oldMeta["deletionTimestamp"] is not null && Added(oldMeta["finalizers"], meta["finalizers"]))
            {
                throw ApiError.Invalid(r.Kind, name, "metadata.finalizers", "Forbidden: no new finalizers can be added if the object is being deleted");
            }

            Pruning.Prune(r.Schema, next);
            ValidateCommon(r, next, name);
            Admission?.Invoke(r, next);
            if (r is { Group: "", Plural: "services" })
            {
                ServiceAddresses.Keep(old, next);
            }

            if (r is { Group: "", Plural: "secrets" })
            {
                FoldStringData(next);
            }

            Defaults.Apply(r.Schema, next);
        }

        next["apiVersion"] = r.GroupVersion;
        next["kind"] = r.Kind;
        if (SpecChanged(r, old, next))
        {
            Meta(next)["generation"] = Number(old["metadata"]!["generation"]) + 1;
        }

        managers ??= UpdateManagers(stored, old, next, manager);
        if (JsonNode.DeepEquals(old, next))
        {
            // No change, no new resourceVersion and no event (the operator relies on this to skip writes).
            stored.Managers = managers;
            return Render(stored);
        }

        stored.Object = next;
        stored.Managers = managers;
        // The last finalizer gone: the object goes, unless it is a pod still within its grace period (its node deletes it).
        if (next["metadata"]!["deletionTimestamp"] is not null && Finalizers(next).Count == 0 && Number(next["metadata"]!["deletionGracePeriodSeconds"]) == 0)
        {
            Remove(stored);
            RunGarbageCollector();
            return Render(stored);
        }

        Commit(stored, "MODIFIED");
        RunGarbageCollector();
        return Render(stored);
    }

    /// <summary>A Secret's <c>stringData</c> is written into <c>data</c> (base64, over the same keys) and never stored, as on the real server.</summary>
    private static void FoldStringData(JsonObject secret)
    {
        if (secret["stringData"] is not JsonObject strings)
        {
            return;
        }

        if (secret["data"] is not JsonObject data)
        {
            data = [];
            secret["data"] = data;
        }

        foreach (var (key, value) in strings)
        {
            data[key] = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes((string?)value ?? ""));
        }

        secret.Remove("stringData");
    }

    private static long Number(JsonNode? node) =>
        node is null ? 0 : long.Parse(node.ToJsonString(), CultureInfo.InvariantCulture);

    private static void SetOrRemove(JsonObject obj, string key, JsonNode? value)
    {
        if (value is null)
        {
            obj.Remove(key);
        }
        else
        {
            obj[key] = value.DeepClone();
        }
    }

    private static bool Added(JsonNode? before, JsonNode? after)
    {
        var old = (before as JsonArray)?.Select(n => (string?)n).ToHashSet() ?? [];
        return (after as JsonArray)?.Any(n => !old.Contains((string?)n)) ?? false;
    }

    private static Dictionary<string, ManagerEntry> UpdateManagers(Stored stored, JsonObject old, JsonObject next, string manager)
    {
        var types = ListTypes.For(stored.Resource);
        var before = JsonTree.Leaves(old, types);
        var after = JsonTree.Leaves(next, types);
        var managers = stored.Managers.ToDictionary(m => m.Key, m => m.Value with { Paths = [.. m.Value.Paths] });
        var changed = after.Where(a => !before.TryGetValue(a.Key, out var b) || !JsonNode.DeepEquals(a.Value, b)).Select(a => a.Key).ToList();
        foreach (var entry in managers.Values)
        {
            entry.Paths.RemoveWhere(p => !after.ContainsKey(p) || changed.Contains(p));
        }

        if (changed.Count > 0)
        {
            if (!managers.TryGetValue(manager, out var mine))
            {
                mine = new ManagerEntry("Update", []);
                managers[manager] = mine;
            }

            mine.Paths.UnionWith(changed);
        }

        foreach (var empty in managers.Where(m => m.Value.Paths.Count == 0).Select(m => m.Key).ToList())
        {
            managers.Remove(empty);
        }

        return managers;
    }

    private static bool SpecChanged(ResourceInfo r, JsonObject old, JsonObject next)
    {
        foreach (var (key, value) in next)
        {
            if (key is "metadata" or "apiVersion" or "kind" || (key == "status" && r.HasStatus))
            {
                continue;
            }

            if (!JsonNode.DeepEquals(value, old[key]))
            {
                return true;
            }
        }

        return old.Any(p => p.Key is not ("metadata" or "apiVersion" or "kind") && !(p.Key == "status" && r.HasStatus) && !next.ContainsKey(p.Key));
    }

    /// <summary>DELETE with preconditions and a propagation policy; finalizers turn it into setting deletionTimestamp.</summary>
    public JsonObject Delete(ResourceInfo r, string? ns, string name, JsonObject? options)
    {
        lock (_lock)
        {
            var stored = Lookup(r, ns, name) ?? throw ApiError.NotFound(r.Plural, name);
            var meta = Meta(stored.Object);
            if (options?["preconditions"] is JsonObject pre)
            {
                if ((string?)pre["uid"] is { } uid && uid != (string?)meta["uid"])
                {
                    throw ApiError.Conflict(r.Plural, name, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta["uid"]}");
                }

                if ((string?)pre["resourceVersion"] is { } rv && rv != (string?)meta["resourceVersion"])
                {
                    throw ApiError.Conflict(r.Plural, name, $"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {meta["resourceVersion"]}");
                }
            }

            if (r.Group.Length == 0 && r.Plural == "pods" && PodDeletion.GracePeriod(stored.Object, options) is { } grace)
            {
                // A pod on a node ends gracefully: the node's agent stops it and deletes it with grace 0.
                var next = (JsonObject)stored.Object.DeepClone();
                if (PodDeletion.MarkTerminating(Meta(next), grace, _time.GetUtcNow()))
                {
                    stored.Object = next;
                    Commit(stored, "MODIFIED");
                }

                return Render(stored);
            }

            var policy = (string?)options?["propagationPolicy"] ?? ((bool?)options?["orphanDependents"] == true ? "Orphan" : "Background");
            MarkDeleted(stored, policy);
            RunGarbageCollector();
            return Render(stored);
        }
    }

    private void MarkDeleted(Stored stored, string policy)
    {
        var next = (JsonObject)stored.Object.DeepClone();
        var meta = Meta(next);
        var finalizers = Finalizers(next);
        var extra = policy switch
        {
            "Foreground" => "foregroundDeletion",
            "Orphan" => "orphan",
            _ => null,
        };
        if (extra is not null && !finalizers.Contains(extra) && Dependents(stored).Count > 0)
        {
            finalizers.Add(extra);
            meta["finalizers"] = new JsonArray([.. finalizers.Select(f => (JsonNode)JsonValue.Create(f))]);
        }

        if (finalizers.Count == 0)
        {
            Remove(stored);
            return;
        }

        if (meta["deletionTimestamp"] is null)
        {
            meta["deletionTimestamp"] = KubeJson.FormatTime(_time.GetUtcNow());
            meta["deletionGracePeriodSeconds"] = 0;
            meta["generation"] = Number(meta["generation"]) + 1;
        }

        if (!JsonNode.DeepEquals(next, stored.Object))
        {
            stored.Object = next;
            Commit(stored, "MODIFIED");
        }
    }

    private void Remove(Stored stored)
    {
        var meta = Meta(stored.Object);
        _objects[stored.Resource.Id].Remove(StoreKey((string?)meta["namespace"], (string)meta["name"]!));
        _byUid.Remove((string)meta["uid"]!);
        Commit(stored, "DELETED");
    }

    private List<Stored> Dependents(Stored owner)
    {
        var uid = (string?)owner.Object["metadata"]!["uid"];
        var result = new List<Stored>();
        foreach (var collection in _objects.Values)
        {
            foreach (var s in collection.Values)
            {
                if (s.Object["metadata"]?["ownerReferences"] is JsonArray refs && refs.Any(o => (string?)o?["uid"] == uid))
                {
                    result.Add(s);
                }
            }
        }

        return result;
    }

    /// <summary>
    /// Owner-reference garbage collection, run to a fixed point after every deletion: objects whose owners are all
    /// gone are deleted; foreground deletion waits for blocking dependents; orphaning strips the references.
    /// </summary>
    private void RunGarbageCollector()
    {
        for (var round = 0; round < 100; round++)
        {
            var changed = false;
            foreach (var collection in _objects.Values.ToList())
            {
                foreach (var stored in collection.Values.ToList())
                {
                    changed |= CollectOne(stored);
                }
            }

            if (!changed)
            {
                return;
            }
        }
    }

    private bool CollectOne(Stored stored)
    {
        var meta = Meta(stored.Object);
        if (meta["ownerReferences"] is JsonArray refs && refs.Count > 0 && meta["deletionTimestamp"] is null
            && refs.All(o => !_byUid.ContainsKey((string?)o?["uid"] ?? "")))
        {
            MarkDeleted(stored, "Background");
            return true;
        }

        if (meta["deletionTimestamp"] is null)
        {
            return false;
        }

        var finalizers = Finalizers(stored.Object);
        if (finalizers.Contains("orphan"))
        {
            var uid = (string?)meta["uid"];
            foreach (var dependent in Dependents(stored))
            {
                var copy = (JsonObject)dependent.Object.DeepClone();
                var kept = ((JsonArray)copy["metadata"]!["ownerReferences"]!).Where(o => (string?)o?["uid"] != uid).Select(o => o!.DeepClone()).ToArray();
                copy["metadata"]!["ownerReferences"] = new JsonArray(kept);
                dependent.Object = copy;
                Commit(dependent, "MODIFIED");
            }

            RemoveFinalizer(stored, "orphan");
            return true;
        }

        if (finalizers.Contains("foregroundDeletion"))
        {
            var dependents = Dependents(stored);
            var progressed = false;
            foreach (var dependent in dependents.Where(d => d.Object["metadata"]!["deletionTimestamp"] is null))
            {
                MarkDeleted(dependent, "Foreground");
                progressed = true;
            }

            var blocking = Dependents(stored).Where(d =>
                ((JsonArray)d.Object["metadata"]!["ownerReferences"]!).Any(o => (string?)o?["uid"] == (string?)meta["uid"] && (bool?)o?["blockOwnerDeletion"] == true));
            if (!blocking.Any())
            {
                RemoveFinalizer(stored, "foregroundDeletion");
                return true;
            }

            return progressed;
        }

        return false;
    }

    private void RemoveFinalizer(Stored stored, string finalizer)
    {
        var copy = (JsonObject)stored.Object.DeepClone();
        var rest = Finalizers(copy).Where(f => f != finalizer).ToList();
        Meta(copy)["finalizers"] = new JsonArray([.. rest.Select(f => (JsonNode)JsonValue.Create(f))]);
        stored.Object = copy;
        if (rest.Count == 0)
        {
            Remove(stored);
        }
        else
        {
            Commit(stored, "MODIFIED");
        }
    }

    private static List<string> Finalizers(JsonObject obj) =>
        (obj["metadata"]?["finalizers"] as JsonArray)?.Select(f => (string)f!).ToList() ?? [];

    // ---- commit, history and watches ----

    private void Commit(Stored stored, string type)
    {
        _rv++;
        var copy = (JsonObject)stored.Object.DeepClone();
        Meta(copy)["resourceVersion"] = _rv.ToString(CultureInfo.InvariantCulture);
        stored.Object = copy;
        var snapshot = Render(stored);
        var meta = Meta(copy);
        var before = type == "ADDED" ? null : stored.LastRendered;
        _history.Add(new HistoryEntry(_rv, stored.Resource, StoreKey((string?)meta["namespace"], (string)meta["name"]!), type, snapshot, before));
        stored.LastRendered = snapshot;
        if (_history.Count > _historyLimit)
        {
            var drop = _history.Count - _historyLimit;
            _oldestWatchable = _history[drop - 1].Rv;
            _history.RemoveRange(0, drop);
        }

        foreach (var watcher in _watchers)
        {
            watcher.Offer(stored.Resource, type, snapshot);
        }
    }

    /// <summary>
    /// Subscribes a watcher. From no RV (or "0") it first gets ADDED for every current object; from an RV it gets
    /// the history after it, or a 410 ERROR when that history has been compacted away.
    /// </summary>
    public Watcher Watch(ResourceInfo r, string? ns, Selector labels, Selector fields, string? rv, bool bookmarks)
    {
        lock (_lock)
        {
            var watcher = new Watcher(r, ns, labels, fields, bookmarks);
            if (string.IsNullOrEmpty(rv) || rv == "0")
            {
                foreach (var stored in _objects[r.Id].Values)
                {
                    watcher.Offer(r, "ADDED", Render(stored));
                }
            }
            else
            {
                if (!long.TryParse(rv, NumberStyles.None, CultureInfo.InvariantCulture, out var from))
                {
                    throw ApiError.BadRequest($"invalid resourceVersion \"{rv}\"");
                }

                if (from < _oldestWatchable)
                {
                    watcher.Fail(ApiError.Gone($"too old resource version: {from} ({_oldestWatchable})"));
                    return watcher;
                }

                foreach (var entry in _history)
                {
                    if (entry.Rv > from)
                    {
                        watcher.Offer(entry.Resource, entry.Type, entry.Object);
                    }
                }
            }

            _watchers.Add(watcher);
            return watcher;
        }
    }

    public void Unwatch(Watcher watcher)
    {
        lock (_lock)
        {
            _watchers.Remove(watcher);
        }
    }

    /// <summary>Queues a BOOKMARK at the current RV on every watcher that asked for bookmarks.</summary>
    public void SendBookmarks()
    {
        lock (_lock)
        {
            foreach (var watcher in _watchers)
            {
                watcher.Bookmark(_rv);
            }
        }
    }

    /// <summary>Fault: every open watch gets a 410 ERROR event and ends.</summary>
    public void ExpireWatches()
    {
        lock (_lock)
        {
            foreach (var watcher in _watchers)
            {
                watcher.Fail(ApiError.Gone("too old resource version: the watch cache was reset"));
            }

            _watchers.Clear();
        }
    }

    /// <summary>Fault: the history is compacted, so a watch or continue from any earlier RV gets 410.</summary>
    public void Compact()
    {
        lock (_lock)
        {
            _history.Clear();
            _oldestWatchable = _rv;
        }
    }

    /// <summary>
    /// Fault: a restart with a new resourceVersion history (an etcd restore): open watches are cut, every object
    /// gets a new RV, and nothing before the restart can be watched from.
    /// </summary>
    public List<Watcher> Restart()
    {
        lock (_lock)
        {
            var cut = _watchers.ToList();
            _watchers.Clear();
            _history.Clear();
            _rv += 1_000_000;
            foreach (var collection in _objects.Values)
            {
                foreach (var stored in collection.Values)
                {
                    _rv++;
                    var copy = (JsonObject)stored.Object.DeepClone();
                    Meta(copy)["resourceVersion"] = _rv.ToString(CultureInfo.InvariantCulture);
                    stored.Object = copy;
                    stored.LastRendered = Render(stored);
                }
            }

            _oldestWatchable = _rv;
            _cache = null;
            _cacheRv = null;
            return cut;
        }
    }

    /// <summary>
    /// Fault: the watch cache stops following the store, so lists served from it (<c>resourceVersion=0</c>, or an
    /// RV it has reached) see the state of now until <see cref="ThawWatchCache"/>.
    /// </summary>
    public void FreezeWatchCache()
    {
        lock (_lock)
        {
            _cache = _objects.ToDictionary(
                o => o.Key,
                o => new SortedDictionary<string, JsonObject>(o.Value.ToDictionary(s => s.Key, s => Render(s.Value)), StringComparer.Ordinal));
            _cacheRv = _rv;
        }
    }

    public void ThawWatchCache()
    {
        lock (_lock)
        {
            _cache = null;
            _cacheRv = null;
        }
    }

    public List<Watcher> Watchers()
    {
        lock (_lock)
        {
            return [.. _watchers];
        }
    }

    // ---- helpers ----

    private Stored? Lookup(ResourceInfo r, string? ns, string name) =>
        _objects[r.Id].TryGetValue(StoreKey(r.Namespaced ? ns : null, name), out var s) ? s : null;

    private static string StoreKey(string? ns, string name) => (ns ?? "") + "/" + name;

    private static JsonObject Meta(JsonObject obj)
    {
        if (obj["metadata"] is not JsonObject meta)
        {
            meta = new JsonObject();
            obj["metadata"] = meta;
        }

        return meta;
    }

    private static JsonObject Render(Stored stored)
    {
        var copy = (JsonObject)stored.Object.DeepClone();
        if (stored.Managers.Count > 0)
        {
            var managed = new JsonArray();
            foreach (var (manager, entry) in stored.Managers.OrderBy(m => m.Key, StringComparer.Ordinal))
            {
                managed.Add(new JsonObject
                {
                    ["manager"] = manager,
                    ["operation"] = entry.Operation,
                    ["apiVersion"] = stored.Resource.GroupVersion,
                    ["fieldsType"] = "FieldsV1",
                    ["fieldsV1"] = JsonTree.FieldsV1(entry.Paths),
                });
            }

            Meta(copy)["managedFields"] = managed;
        }

        return copy;
    }

    private sealed class Stored(ResourceInfo resource, JsonObject obj)
    {
        public ResourceInfo Resource { get; } = resource;

        public JsonObject Object { get; set; } = obj;

        public Dictionary<string, ManagerEntry> Managers { get; set; } = [];

        /// <summary>The object as its last commit rendered it: the state a later change's history entry undoes to.</summary>
        public JsonObject? LastRendered { get; set; }
    }

    private sealed record ManagerEntry(string Operation, HashSet<string> Paths);

    /// <summary>One committed change; <see cref="Before"/> (null for ADDED) lets a list be read at an older RV.</summary>
    private sealed record HistoryEntry(long Rv, ResourceInfo Resource, string Key, string Type, JsonObject Object, JsonObject? Before);
}

/// <summary>One open watch: a queue of events in commit order, filtered by resource, namespace and selectors.</summary>
internal sealed class Watcher(ResourceInfo resource, string? ns, Selector labels, Selector fields, bool bookmarks)
{
    private readonly Channel<JsonObject> _events = Channel.CreateUnbounded<JsonObject>(new UnboundedChannelOptions { SingleReader = true });

    public ChannelReader<JsonObject> Events => _events.Reader;

    /// <summary>Fault: the stream stops sending (but stays open), like a dead connection.</summary>
    public bool Stalled { get; set; }

    /// <summary>Fault: the connection is dropped without a clean end.</summary>
    public CancellationTokenSource Abort { get; } = new();

    public void Offer(ResourceInfo r, string type, JsonObject obj)
    {
        if (r.Id != resource.Id || !string.IsNullOrEmpty(ns) && (string?)obj["metadata"]?["namespace"] != ns)
        {
            return;
        }

        if (!labels.Matches(Selector.LabelsOf(obj)) || !fields.Matches(Selector.FieldsOf(obj)))
        {
            return;
        }

        _events.Writer.TryWrite(new JsonObject { ["type"] = type, ["object"] = obj.DeepClone() });
    }

    public void Bookmark(long rv)
    {
        if (!bookmarks)
        {
            return;
        }

        _events.Writer.TryWrite(new JsonObject
        {
            ["type"] = "BOOKMARK",
            ["object"] = new JsonObject
            {
                ["kind"] = resource.Kind,
                ["apiVersion"] = resource.GroupVersion,
                ["metadata"] = new JsonObject { ["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture) },
            },
        });
    }

    public void Fail(ApiError error)
    {
        _events.Writer.TryWrite(new JsonObject { ["type"] = "ERROR", ["object"] = error.ToStatus() });
        _events.Writer.TryComplete();
    }
}
