using System.Text.Json;
using MemoryCluster.Compute.Engine.Graph;
using MemoryCluster.Compute.Feed;

namespace MemoryCluster.Compute.Api;

/// <summary>The bounds every request is checked against (a request past one is refused, never cut).</summary>
public sealed record ApiLimits
{
    public int MaxBatch { get; init; } = 1000;

    public int MaxHops { get; init; } = 6;

    public int MaxNodes { get; init; } = 100_000;

    public int MaxK { get; init; } = 1000;

    public int MaxLimit { get; init; } = 10_000;

    public int MaxDimensions { get; init; } = 4096;
}

/// <summary>Validation errors by field path (<c>triples[3].confidence</c>), as an RFC 7807 problem lists them.</summary>
public sealed class Errors
{
    private readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);

    public bool Any => _errors.Count > 0;

    public IDictionary<string, string[]> ToDictionary() => _errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal);

    public void Add(string field, string message)
    {
        if (!_errors.TryGetValue(field, out var list))
        {
            _errors[field] = list = [];
        }

        list.Add(message);
    }

    public void Name(string field, string? value, int maxBytes, bool allowEmpty = false)
    {
        if (value is null)
        {
            Add(field, "is required");
        }
        else if (!allowEmpty && value.Length == 0)
        {
            Add(field, "must not be empty");
        }
        else if (System.Text.Encoding.UTF8.GetByteCount(value) > maxBytes)
        {
            Add(field, $"must be at most {maxBytes} bytes of UTF-8");
        }
        else if (value.Contains('\0', StringComparison.Ordinal))
        {
            Add(field, "must not contain a NUL character");
        }
    }

    public void Range(string field, int? value, int min, int max)
    {
        if (value is { } v && (v < min || v > max))
        {
            Add(field, $"must be between {min} and {max} (was {v})");
        }
    }
}

public sealed record TripleInput(string? Subject, string? Predicate, string? Object, string? ObjectKind, float? Confidence);

public sealed record SourceInput(string? Session, string? Actor, JsonElement? Metadata);

public sealed record WriteTriplesRequest(IReadOnlyList<TripleInput>? Triples, SourceInput? Source);

public sealed record SupersedeRequest(string? Subject, string? Predicate, string? Object, string? ObjectKind, float? Confidence, SourceInput? Source);

public sealed record EmbeddingInput(string? Entity, float[]? Vector);

public sealed record WriteEmbeddingsRequest(string? Model, IReadOnlyList<EmbeddingInput>? Embeddings);

public sealed record TraverseRequest(string? Start, int? Hops, string? Direction, IReadOnlyList<string>? Predicates, DateTimeOffset? AsOf, int? MaxNodes);

public sealed record PathsRequest(string? From, string? To, string? Kind, string? Direction, IReadOnlyList<string>? Predicates, DateTimeOffset? AsOf, int? MaxDepth);

public sealed record VectorSearchRequest(string? Model, float[]? Vector, int? K, int? Ef);

public sealed record FusionRequest(string? Model, float[]? Vector, int? Candidates, int? Hops, int? TopN, string? Direction, IReadOnlyList<string>? Predicates, double? SimilarityWeight, double? ProximityWeight, double? ConfidenceWeight);

/// <summary>Checks requests field by field (pure): every error found, with its path, before anything is changed.</summary>
public static class RequestValidator
{
    public static Errors Check(WriteTriplesRequest? request, ApiLimits limits)
    {
        var errors = new Errors();
        if (request?.Triples is not { } triples)
        {
            errors.Add("triples", "is required");
            return errors;
        }

        if (triples.Count == 0)
        {
            errors.Add("triples", "must hold at least one triple");
        }
        else if (triples.Count > limits.MaxBatch)
        {
            errors.Add("triples", $"holds {triples.Count} triples; at most {limits.MaxBatch} per request");
        }
        else
        {
            for (var i = 0; i < triples.Count; i++)
            {
                Triple(errors, $"triples[{i}]", triples[i]);
            }
        }

        Source(errors, request.Source);
        return errors;
    }

    public static Errors Check(SupersedeRequest? request)
    {
        var errors = new Errors();
        if (request is null)
        {
            errors.Add("body", "is required");
            return errors;
        }

        Triple(errors, string.Empty, new TripleInput(request.Subject, request.Predicate, request.Object, request.ObjectKind, request.Confidence));
        Source(errors, request.Source);
        return errors;
    }

    public static Errors Check(WriteEmbeddingsRequest? request, ApiLimits limits, int? modelDimensions)
    {
        var errors = new Errors();
        if (request is null)
        {
            errors.Add("body", "is required");
            return errors;
        }

        if (request.Model is null || !System.Text.RegularExpressions.Regex.IsMatch(request.Model, "^[A-Za-z0-9._:/-]{1,128}$"))
        {
            errors.Add("model", "is required: 1 to 128 letters, digits or . _ : / -");
        }

        if (request.Embeddings is not { Count: > 0 } embeddings)
        {
            errors.Add("embeddings", "must hold at least one embedding");
            return errors;
        }

        if (embeddings.Count > limits.MaxBatch)
        {
            errors.Add("embeddings", $"holds {embeddings.Count} embeddings; at most {limits.MaxBatch} per request");
            return errors;
        }

        var dims = modelDimensions;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < embeddings.Count; i++)
        {
            var e = embeddings[i];
            errors.Name($"embeddings[{i}].entity", e.Entity, 1024);
            if (e.Entity is not null && !seen.Add(e.Entity))
            {
                errors.Add($"embeddings[{i}].entity", $"'{e.Entity}' appears twice in this request");
            }

            Vector(errors, $"embeddings[{i}].vector", e.Vector, limits, ref dims);
        }

        return errors;
    }

    public static Errors Check(TraverseRequest? request, ApiLimits limits)
    {
        var errors = new Errors();
        if (request is null)
        {
            errors.Add("body", "is required");
            return errors;
        }

        errors.Name("start", request.Start, 1024);
        if (request.Hops is null)
        {
            errors.Add("hops", "is required");
        }

        errors.Range("hops", request.Hops, 1, limits.MaxHops);
        errors.Range("maxNodes", request.MaxNodes, 1, limits.MaxNodes);
        DirectionOf(errors, "direction", request.Direction);
        return errors;
    }

    public static Errors Check(PathsRequest? request, ApiLimits limits)
    {
        var errors = new Errors();
        if (request is null)
        {
            errors.Add("body", "is required");
            return errors;
        }

        errors.Name("from", request.From, 1024);
        errors.Name("to", request.To, 1024);
        if (request.Kind is not (null or "shortest" or "cheapest"))
        {
            errors.Add("kind", $"must be 'shortest' or 'cheapest' (was '{request.Kind}')");
        }

        errors.Range("maxDepth", request.MaxDepth, 1, limits.MaxHops * 4);
        DirectionOf(errors, "direction", request.Direction);
        return errors;
    }

    public static Errors Check(VectorSearchRequest? request, ApiLimits limits, int? modelDimensions)
    {
        var errors = ModelAndVector(request?.Model, request?.Vector, limits, modelDimensions, request is null);
        errors.Range("k", request?.K, 1, limits.MaxK);
        errors.Range("ef", request?.Ef, 1, 10 * limits.MaxK);
        return errors;
    }

    public static Errors Check(FusionRequest? request, ApiLimits limits, int? modelDimensions)
    {
        var errors = ModelAndVector(request?.Model, request?.Vector, limits, modelDimensions, request is null);
        if (request is null)
        {
            return errors;
        }

        errors.Range("candidates", request.Candidates, 1, limits.MaxK);
        errors.Range("hops", request.Hops, 0, limits.MaxHops);
        errors.Range("topN", request.TopN, 1, limits.MaxK);
        DirectionOf(errors, "direction", request.Direction);
        foreach (var (name, w) in new[] { ("similarityWeight", request.SimilarityWeight), ("proximityWeight", request.ProximityWeight), ("confidenceWeight", request.ConfidenceWeight) })
        {
            if (w is { } v && !(v >= 0 && v <= 1))
            {
                errors.Add(name, $"must be between 0 and 1 (was {v})");
            }
        }

        return errors;
    }

    /// <summary>The direction named by a request; null (with an error) when it names none.</summary>
    public static Direction? DirectionOf(Errors errors, string field, string? text)
    {
        switch (text)
        {
            case null or "both":
                return Direction.Both;
            case "out":
                return Direction.Out;
            case "in":
                return Direction.In;
            default:
                errors.Add(field, $"must be 'out', 'in' or 'both' (was '{text}')");
                return null;
        }
    }

    public static ObjectKind KindOf(string? text) => text switch
    {
        null or "entity" => ObjectKind.Entity,
        "literal" => ObjectKind.Literal,
        _ => ObjectKind.Unknown,
    };

    // A search names a model and gives a query vector of that model's dimension.
    private static Errors ModelAndVector(string? model, float[]? vector, ApiLimits limits, int? modelDimensions, bool noBody)
    {
        var errors = new Errors();
        if (noBody)
        {
            errors.Add("body", "is required");
            return errors;
        }

        errors.Name("model", model, 128);
        var dims = modelDimensions;
        Vector(errors, "vector", vector, limits, ref dims);
        return errors;
    }

    private static void Triple(Errors errors, string at, TripleInput? t)
    {
        var prefix = at.Length == 0 ? string.Empty : at + ".";
        if (t is null)
        {
            errors.Add(at, "must be a triple, not null");
            return;
        }

        errors.Name(prefix + "subject", t.Subject, 1024);
        errors.Name(prefix + "predicate", t.Predicate, 256);
        var kind = KindOf(t.ObjectKind);
        if (kind == ObjectKind.Unknown)
        {
            errors.Add(prefix + "objectKind", $"must be 'entity' or 'literal' (was '{t.ObjectKind}')");
        }

        errors.Name(prefix + "object", t.Object, 2000, allowEmpty: kind == ObjectKind.Literal);
        if (t.Confidence is { } c && !(c >= 0 && c <= 1))
        {
            errors.Add(prefix + "confidence", $"must be between 0 and 1 (was {c})");
        }
    }

    private static void Source(Errors errors, SourceInput? source)
    {
        if (source is null)
        {
            return;
        }

        if (source.Session is { } s)
        {
            errors.Name("source.session", s, 1024);
        }

        if (source.Actor is { } a)
        {
            errors.Name("source.actor", a, 1024);
        }

        if (source.Metadata is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Null or JsonValueKind.Undefined) })
        {
            errors.Add("source.metadata", "must be a JSON object");
        }
    }

    private static void Vector(Errors errors, string field, float[]? vector, ApiLimits limits, ref int? dims)
    {
        if (vector is null || vector.Length == 0)
        {
            errors.Add(field, "is required: an array of numbers");
            return;
        }

        if (vector.Length > limits.MaxDimensions)
        {
            errors.Add(field, $"has {vector.Length} dimensions; at most {limits.MaxDimensions}");
            return;
        }

        if (dims is { } d && vector.Length != d)
        {
            errors.Add(field, $"has {vector.Length} dimensions; the model has {d}");
        }

        dims ??= vector.Length;
        foreach (var v in vector)
        {
            if (!float.IsFinite(v))
            {
                errors.Add(field, "must hold finite numbers only");
                return;
            }
        }
    }
}
