using System.Text.Json.Nodes;

namespace MemoryCluster.Kube.TestServer;

/// <summary>A failed request, answered as a <c>Status</c> with the code and reason the real server uses.</summary>
public sealed class ApiError(int code, string reason, string message, JsonArray? causes = null, JsonObject? details = null) : Exception(message)
{
    public int Code { get; } = code;

    public string Reason { get; } = reason;

    public JsonObject ToStatus()
    {
        var d = details ?? new JsonObject();
        if (causes is not null)
        {
            d["causes"] = causes;
        }

        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = Message,
            ["reason"] = Reason,
            ["code"] = Code,
        };
        if (d.Count > 0)
        {
            status["details"] = d;
        }

        return status;
    }

    public static ApiError NotFound(string resource, string name) =>
        new(404, "NotFound", $"{resource} \"{name}\" not found", details: new JsonObject { ["name"] = name, ["kind"] = resource });

    public static ApiError AlreadyExists(string resource, string name) =>
        new(409, "AlreadyExists", $"{resource} \"{name}\" already exists", details: new JsonObject { ["name"] = name, ["kind"] = resource });

    public static ApiError Conflict(string resource, string name, string why) =>
        new(409, "Conflict", $"Operation cannot be fulfilled on {resource} \"{name}\": {why}", details: new JsonObject { ["name"] = name, ["kind"] = resource });

    public static ApiError Invalid(string kind, string name, string field, string message) =>
        new(422, "Invalid", $"{kind} \"{name}\" is invalid: {field}: {message}",
            [new JsonObject { ["reason"] = "FieldValueInvalid", ["message"] = message, ["field"] = field }],
            new JsonObject { ["name"] = name, ["kind"] = kind });

    public static ApiError BadRequest(string message) => new(400, "BadRequest", message);

    public static ApiError Gone(string message) => new(410, "Expired", message);
}
