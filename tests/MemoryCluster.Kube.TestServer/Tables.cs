using System.Globalization;
using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>The <c>meta.k8s.io/v1 Table</c> responses kubectl asks for, with a CRD's printer columns.</summary>
internal static class Tables
{
    public static JsonArray Columns(ResourceInfo r)
    {
        var columns = new JsonArray
        {
            Column("Name", "string", "name", "Name must be unique within a namespace.", 0),
        };
        if (IsPod(r))
        {
            columns.Add(Column("Ready", "string", "", "The number of containers ready, of all.", 0));
            columns.Add(Column("Status", "string", "", "The pod's state, as kubectl words it.", 0));
            columns.Add(Column("Restarts", "string", "", "The number of times its containers restarted.", 0));
            columns.Add(Column("Age", "string", "", "Time since the pod was made.", 0));
            columns.Add(Column("IP", "string", "", "The pod's IP address.", 1));
            columns.Add(Column("Node", "string", "", "The node it runs on.", 1));
            return columns;
        }

        if (r.Columns.Count == 0)
        {
            columns.Add(Column("Created At", "date", "", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0));
        }

        foreach (var c in r.Columns)
        {
            columns.Add(Column(c.Name, c.Type, "", c.Description, c.Priority));
        }

        return columns;
    }

    public static JsonObject Table(ResourceInfo r, IEnumerable<JsonObject> objects, string resourceVersion, bool withColumns, DateTimeOffset now)
    {
        var rows = new JsonArray();
        foreach (var obj in objects)
        {
            rows.Add(Row(r, obj, now));
        }

        var table = new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = "meta.k8s.io/v1",
            ["metadata"] = new JsonObject { ["resourceVersion"] = resourceVersion },
        };
        if (withColumns)
        {
            table["columnDefinitions"] = Columns(r);
        }

        table["rows"] = rows;
        return table;
    }

    private static JsonObject Row(ResourceInfo r, JsonObject obj, DateTimeOffset now)
    {
        var cells = new JsonArray { (string?)obj["metadata"]?["name"] };
        if (IsPod(r))
        {
            foreach (var cell in PodCells(obj, now))
            {
                cells.Add(cell);
            }
        }
        else if (r.Columns.Count == 0)
        {
            cells.Add(Age((string?)obj["metadata"]?["creationTimestamp"], now));
        }

        foreach (var c in r.Columns)
        {
            var value = Evaluate(obj, c.JsonPath);
            cells.Add(c.Type == "date" ? Age((string?)value, now) : value?.DeepClone());
        }

        var meta = (JsonObject)obj["metadata"]!.DeepClone();
        meta.Remove("managedFields");
        return new JsonObject
        {
            ["cells"] = cells,
            ["object"] = new JsonObject
            {
                ["kind"] = "PartialObjectMetadata",
                ["apiVersion"] = "meta.k8s.io/v1",
                ["metadata"] = meta,
            },
        };
    }

    private static bool IsPod(ResourceInfo r) => r is { Group: "", Plural: "pods" };

    /// <summary>A pod's row as kubectl prints it: ready containers, status (a waiting reason, Terminating, or the phase), restarts, age, IP, node.</summary>
    internal static IEnumerable<string?> PodCells(JsonObject pod, DateTimeOffset now)
    {
        var statuses = (pod["status"]?["containerStatuses"] as JsonArray)?.OfType<JsonObject>().ToList() ?? [];
        var containers = (pod["spec"]?["containers"] as JsonArray)?.Count ?? statuses.Count;
        var ready = statuses.Count(c => (bool?)c["ready"] == true);
        var waiting = statuses.Select(c => (string?)c["state"]?["waiting"]?["reason"]).FirstOrDefault(r => r is not null);
        var status = pod["metadata"]?["deletionTimestamp"] is not null ? "Terminating" : waiting ?? (string?)pod["status"]?["phase"] ?? "Pending";
        var restarts = statuses.Sum(c => (int?)c["restartCount"] ?? 0);
        yield return $"{ready}/{containers}";
        yield return status;
        yield return restarts.ToString(CultureInfo.InvariantCulture);
        yield return Age((string?)pod["metadata"]?["creationTimestamp"], now);
        yield return (string?)pod["status"]?["podIP"] ?? "<none>";
        yield return (string?)pod["spec"]?["nodeName"] ?? "<none>";
    }

    /// <summary>The simple JSONPath printer columns use: <c>.a.b.c</c>.</summary>
    private static JsonNode? Evaluate(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var part in path.TrimStart('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            node = node is JsonObject o ? o[part] : null;
        }

        return node;
    }

    private static string? Age(string? timestamp, DateTimeOffset now)
    {
        if (timestamp is null)
        {
            return null;
        }

        var age = now - DateTimeOffset.Parse(timestamp, CultureInfo.InvariantCulture);
        return HumanDuration(age);
    }

    /// <summary>apimachinery's <c>duration.HumanDuration</c>.</summary>
    public static string HumanDuration(TimeSpan d)
    {
        var seconds = (long)d.TotalSeconds;
        if (seconds < -1)
        {
            return "<invalid>";
        }

        if (seconds < 0)
        {
            return "0s";
        }

        if (seconds < 60 * 2)
        {
            return seconds + "s";
        }

        var minutes = seconds / 60;
        if (minutes < 10)
        {
            var s = seconds % 60;
            return s == 0 ? minutes + "m" : minutes + "m" + s + "s";
        }

        if (minutes < 60 * 3)
        {
            return minutes + "m";
        }

        var hours = minutes / 60;
        if (hours < 8)
        {
            var m = minutes % 60;
            return m == 0 ? hours + "h" : hours + "h" + m + "m";
        }

        if (hours < 48)
        {
            return hours + "h";
        }

        if (hours < 24 * 8)
        {
            var h = hours % 24;
            return h == 0 ? hours / 24 + "d" : hours / 24 + "d" + h + "h";
        }

        return hours / 24 < 365 * 2 ? hours / 24 + "d" : hours / 24 / 365 + "y";
    }

    private static JsonObject Column(string name, string type, string format, string description, int priority) => new()
    {
        ["name"] = name,
        ["type"] = type,
        ["format"] = format,
        ["description"] = description,
        ["priority"] = priority,
    };
}
