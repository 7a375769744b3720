using System.Globalization;
using System.Text.Json;

namespace MemoryCluster.Compute.Feed;

/// <summary>Turns the row images PostgreSQL wrote into the feed (<c>to_jsonb</c> of a row) into typed changes (pure).</summary>
public static class FeedDecoder
{
    public static FeedChange Decode(string relation, string op, string? image) => (relation, op) switch
    {
        ("triples", "TRUNCATE") => new FeedChange.TriplesTruncated(),
        ("embeddings", "TRUNCATE") => new FeedChange.EmbeddingsTruncated(),
        ("triples", "DELETE") => new FeedChange.TripleDeleted(Parse(image, relation, op).RootElement.GetProperty("id").GetInt64()),
        ("triples", "INSERT" or "UPDATE") => new FeedChange.TripleWritten(Triple(Parse(image, relation, op).RootElement)),
        ("embeddings", "DELETE") => EmbeddingDeleted(Parse(image, relation, op).RootElement),
        ("embeddings", "INSERT" or "UPDATE") => new FeedChange.EmbeddingWritten(Embedding(Parse(image, relation, op).RootElement)),
        _ => throw new FormatException($"the feed holds a change this build does not know: {op} on {relation}"),
    };

    /// <summary>A timestamptz as PostgreSQL writes it in JSON, in Unix milliseconds (infinity as the extremes).</summary>
    public static long Millis(string text) => text switch
    {
        "infinity" => long.MaxValue,
        "-infinity" => long.MinValue,
        _ => DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal).ToUnixTimeMilliseconds(),
    };

    /// <summary>The object kind as the schema spells it.</summary>
    public static ObjectKind Kind(string text) => text switch
    {
        "entity" => ObjectKind.Entity,
        "literal" => ObjectKind.Literal,
        _ => throw new FormatException($"unknown object kind '{text}'"),
    };

    private static JsonDocument Parse(string? image, string relation, string op) =>
        image is null ? throw new FormatException($"{op} on {relation} has no row image") : JsonDocument.Parse(image);

    private static TripleRow Triple(JsonElement e) => new(
        e.GetProperty("id").GetInt64(),
        e.GetProperty("subject").GetString()!,
        e.GetProperty("predicate").GetString()!,
        e.GetProperty("object").GetString()!,
        Kind(e.GetProperty("object_kind").GetString()!),
        (float)e.GetProperty("confidence").GetDouble(),
        OptionalInt64(e, "source_id"),
        Millis(e.GetProperty("valid_from").GetString()!),
        e.GetProperty("valid_to") is { ValueKind: JsonValueKind.String } to ? Millis(to.GetString()!) : null,
        OptionalInt64(e, "superseded_by"));

    private static EmbeddingRow Embedding(JsonElement e)
    {
        var array = e.GetProperty("vector");
        var vector = new float[array.GetArrayLength()];
        var i = 0;
        foreach (var v in array.EnumerateArray())
        {
            // real NaN and infinities come as the strings "NaN", "Infinity", "-Infinity".
            vector[i++] = v.ValueKind == JsonValueKind.String ? float.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetSingle();
        }

        return new EmbeddingRow(e.GetProperty("entity").GetString()!, e.GetProperty("model").GetString()!, vector);
    }

    private static FeedChange.EmbeddingDeleted EmbeddingDeleted(JsonElement e) =>
        new(e.GetProperty("entity").GetString()!, e.GetProperty("model").GetString()!);

    private static long? OptionalInt64(JsonElement e, string name) =>
        e.GetProperty(name) is { ValueKind: JsonValueKind.Number } v ? v.GetInt64() : null;
}
