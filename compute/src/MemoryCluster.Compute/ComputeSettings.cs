using System.Globalization;
using MemoryCluster.Compute.Engine.Vectors;
using Npgsql;

namespace MemoryCluster.Compute;

/// <summary>
/// Turns the compute process's settings (flags, or <c>MEMORYCLUSTER_COMPUTE_*</c> variables, by the same keys) into
/// <see cref="ComputeOptions"/>, refusing each bad one with its key and why (pure: files are read by the caller).
/// </summary>
public static class ComputeSettings
{
    /// <summary>Every key, as a flag (<c>--key</c>) and as a variable (<c>MEMORYCLUSTER_COMPUTE_KEY</c>).</summary>
    public static IReadOnlyList<string> Keys { get; } =
    [
        "rw", "ro", "primary-host", "primary-port", "replica-host", "database", "user", "password", "password-file",
        "host", "port", "token", "token-file", "max-connections", "identity-predicates",
        "embedding-dimensions", "hnsw-m", "hnsw-ef-construction", "hnsw-ef-search", "snapshot-dir",
    ];

    public static string EnvironmentName(string key) => "MEMORYCLUSTER_COMPUTE_" + key.Replace('-', '_').ToUpperInvariant();

    public static string Describe(string key) => key switch
    {
        "rw" => "Connection string of the primary (libpq keywords; several hosts with target_session_attrs=read-write follow a failover).",
        "ro" => "Connection string of a replica for the bulk load (optional).",
        "primary-host" => "Instead of --rw: the read-write Service's host (with --primary-port, --database, --user, --password).",
        "primary-port" => "PostgreSQL port of --primary-host and --replica-host (default 5432).",
        "replica-host" => "Instead of --ro: the read-only Service's host.",
        "database" => "Database (default app).",
        "user" => "User (default app).",
        "password" => "Password (prefer --password-file).",
        "password-file" => "File holding the password.",
        "host" => "Address to listen on (default 0.0.0.0).",
        "port" => "HTTP port (default 8080).",
        "token" => "Bearer token that writes must carry (prefer --token-file).",
        "token-file" => "File holding the bearer token that writes must carry.",
        "max-connections" => "Connections to the primary at most (default 8).",
        "identity-predicates" => "Comma-separated predicates that join names of one identity (default sameAs).",
        "embedding-dimensions" => "Dimensions of the embeddings (checked against every model's vectors when set).",
        "hnsw-m" => "HNSW links per node (default 16).",
        "hnsw-ef-construction" => "HNSW candidate list while building (default 200).",
        "hnsw-ef-search" => "HNSW candidate list while searching (default 64).",
        "snapshot-dir" => "Folder for a local snapshot of what this process holds, written every 5 minutes and at shutdown; a restart reads it instead of loading everything when the database's feed still holds its position (default: none).",
        _ => key,
    };

    /// <param name="values">Settings by key (files already read into <c>password</c> and <c>token</c> by the caller).</param>
    public static (ComputeOptions? Options, IReadOnlyList<string> Errors) Parse(IReadOnlyDictionary<string, string> values)
    {
        var errors = new List<string>();
        foreach (var key in values.Keys.Where(k => !Keys.Contains(k)))
        {
            errors.Add($"{key}: unknown setting");
        }

        string? Get(string key) => values.TryGetValue(key, out var v) && v.Length > 0 ? v : null;
        int Int(string key, int fallback, int min, int max)
        {
            if (Get(key) is not { } text)
            {
                return fallback;
            }

            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max)
            {
                return n;
            }

            errors.Add($"{key}: must be a whole number from {min} to {max} (was '{text}')");
            return fallback;
        }

        var pgPort = Int("primary-port", 5432, 1, 65535);
        var httpPort = Int("port", 8080, 0, 65535);
        var maxConnections = Int("max-connections", 8, 1, 1000);
        var m = Int("hnsw-m", 16, 2, 128);
        var efConstruction = Int("hnsw-ef-construction", 200, 1, 10_000);
        var efSearch = Int("hnsw-ef-search", 64, 1, 10_000);
        var dims = Int("embedding-dimensions", 0, 1, 4096);

        string? Compose(string hostKey)
        {
            if (Get(hostKey) is not { } host)
            {
                return null;
            }

            return new NpgsqlConnectionStringBuilder
            {
                Host = host,
                Port = pgPort,
                Database = Get("database") ?? "app",
                Username = Get("user") ?? "app",
                Password = Get("password"),
            }.ConnectionString;
        }

        // A password given apart (a file, a Secret) goes into a connection string that has none.
        string? WithPassword(string? text)
        {
            if (text is null || Get("password") is not { } password)
            {
                return text;
            }

            try
            {
                var builder = new NpgsqlConnectionStringBuilder(text);
                builder.Password ??= password;
                return builder.ConnectionString;
            }
            catch (ArgumentException)
            {
                return text; // reported below
            }
        }

        var rw = WithPassword(Get("rw")) ?? Compose("primary-host");
        var ro = WithPassword(Get("ro")) ?? Compose("replica-host");
        if (Get("rw") is not null && Get("primary-host") is not null)
        {
            errors.Add("rw: give either --rw or --primary-host, not both");
        }

        if (rw is null)
        {
            errors.Add("rw: required: the primary's connection string (--rw), or --primary-host");
        }

        foreach (var (key, text) in new[] { ("rw", rw), ("ro", ro) })
        {
            if (text is null)
            {
                continue;
            }

            try
            {
                _ = new NpgsqlConnectionStringBuilder(text);
            }
            catch (ArgumentException e)
            {
                errors.Add($"{key}: not a connection string: {e.Message}");
            }
        }

        var token = Get("token");
        if (token is null)
        {
            errors.Add("token: required: writes need a bearer token (--token-file, or MEMORYCLUSTER_COMPUTE_TOKEN from a Secret)");
        }
        else if (token.Length < 16)
        {
            errors.Add("token: must be at least 16 characters");
        }

        var identity = (Get("identity-predicates") ?? "sameAs").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (identity.Length == 0)
        {
            errors.Add("identity-predicates: name at least one predicate");
        }

        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var host = Get("host") ?? "0.0.0.0";
        return (new ComputeOptions
        {
            ReadWrite = rw!,
            ReadOnly = ro,
            Listen = $"http://{(host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host)}:{httpPort}",
            WriteToken = System.Text.Encoding.UTF8.GetBytes(token!),
            MaxConnections = maxConnections,
            IdentityPredicates = identity,
            EmbeddingDimensions = dims == 0 ? null : dims,
            Vectors = new HnswOptions { Dimensions = 1, M = m, EfConstruction = efConstruction, EfSearch = efSearch },
            Feed = new Feed.FeedOptions { SnapshotDirectory = Get("snapshot-dir") },
        }, []);
    }
}
