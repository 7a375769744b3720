using System.Data;
using System.Text.Json;
using MemoryCluster.Compute.Feed;
using Npgsql;
using NpgsqlTypes;

namespace MemoryCluster.Compute.Store;

/// <summary>A triple to write (validated by the API before it gets here).</summary>
public sealed record NewTriple(string Subject, string Predicate, string Object, ObjectKind Kind, float Confidence);

/// <summary>Where a write came from: the provenance row its triples point to.</summary>
public sealed record SourceInfo(string? Session, string? Actor, JsonElement? Metadata);

/// <summary>An embedding to write.</summary>
public sealed record NewEmbedding(string Entity, float[] Vector);

/// <summary>What a write committed: the ids it created and the feed commit that carries it.</summary>
public sealed record WriteResult(IReadOnlyList<long> Ids, FeedPosition Commit)
{
    /// <summary>The feed number of the write's commit.</summary>
    public long Seq => Commit.Seq;
}

/// <summary>A supersession the database refused: the triple is missing, or already closed.</summary>
public sealed class SupersedeRefusedException(string message, bool missing) : Exception(message)
{
    public bool Missing { get; } = missing;
}

/// <summary>
/// Writes on the primary, each call one transaction. Before committing, it numbers the commit in the feed (the
/// deferred feed triggers fire at <c>set constraints all immediate</c>) and returns that number, so the caller can
/// wait until this process has applied it (read-your-writes).
/// </summary>
public static class TripleStore
{
    public static Task<WriteResult> WriteTriplesAsync(Database database, IReadOnlyList<NewTriple> triples, SourceInfo? source, CancellationToken cancellationToken) =>
        database.InTransactionAsync("write triples", IsolationLevel.ReadCommitted, async (connection, transaction, ct) =>
        {
            var sourceId = await InsertSourceAsync(connection, transaction, source, ct).ConfigureAwait(false);
            var ids = await InsertTriplesAsync(connection, transaction, triples, sourceId, ct).ConfigureAwait(false);
            return new WriteResult(ids, await NumberAsync(connection, transaction, ct).ConfigureAwait(false));
        }, cancellationToken);

    /// <summary>Closes triple <paramref name="id"/> now and writes its replacement, in one transaction.</summary>
    public static Task<WriteResult> SupersedeAsync(Database database, long id, NewTriple replacement, SourceInfo? source, CancellationToken cancellationToken) =>
        database.InTransactionAsync("supersede triple", IsolationLevel.ReadCommitted, async (connection, transaction, ct) =>
        {
            await using (var read = Database.Command(connection, "select superseded_by, valid_to is not null from triples where id = $1 for update", transaction, id))
            await using (var reader = await read.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    throw new SupersedeRefusedException($"triple {id} does not exist", missing: true);
                }

                if (reader.GetBoolean(1))
                {
                    throw new SupersedeRefusedException(
                        reader.IsDBNull(0) ? $"triple {id} is already closed" : $"triple {id} is already superseded by triple {reader.GetInt64(0)}", missing: false);
                }
            }

            var sourceId = await InsertSourceAsync(connection, transaction, source, ct).ConfigureAwait(false);
            var created = (await InsertTriplesAsync(connection, transaction, [replacement], sourceId, ct).ConfigureAwait(false))[0];
            await using (var close = Database.Command(connection, "update triples set valid_to = now(), superseded_by = $2 where id = $1", transaction, id, created))
            {
                await close.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            return new WriteResult([created], await NumberAsync(connection, transaction, ct).ConfigureAwait(false));
        }, cancellationToken);

    /// <summary>Writes (or replaces) the vectors of one model.</summary>
    public static Task<WriteResult> WriteEmbeddingsAsync(Database database, string modelName, IReadOnlyList<NewEmbedding> embeddings, CancellationToken cancellationToken) =>
        database.InTransactionAsync("write embeddings", IsolationLevel.ReadCommitted, async (connection, transaction, ct) =>
        {
            // The model's dimension is fixed by its first vectors; a vector of another one is refused (23503).
            await using (var model = Database.Command(connection, "insert into embedding_models (model, dims) values ($1, $2) on conflict (model) do nothing", transaction, modelName, embeddings[0].Vector.Length))
            {
                await model.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            foreach (var e in embeddings)
            {
                await using var upsert = Database.Command(connection,
                    "insert into embeddings (entity, model, dims, vector) values ($1, $2, $3, $4) " +
                    "on conflict (entity, model) do update set dims = excluded.dims, vector = excluded.vector, updated_at = now()",
                    transaction, e.Entity, modelName, e.Vector.Length, new NpgsqlParameter { Value = e.Vector, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Real });
                await upsert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            return new WriteResult([], await NumberAsync(connection, transaction, ct).ConfigureAwait(false));
        }, cancellationToken);

    private static async Task<long?> InsertSourceAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, SourceInfo? source, CancellationToken ct)
    {
        if (source is null)
        {
            return null;
        }

        await using var insert = Database.Command(connection, "insert into sources (session, actor, metadata) values ($1, $2, $3) returning id", transaction,
            source.Session, source.Actor, new NpgsqlParameter { Value = source.Metadata?.GetRawText() ?? "{}", NpgsqlDbType = NpgsqlDbType.Jsonb });
        return (long)(await insert.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    private static async Task<List<long>> InsertTriplesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<NewTriple> triples, long? sourceId, CancellationToken ct)
    {
        // One statement for the whole batch: the columns as arrays, unnested in order.
        await using var insert = Database.Command(connection,
            "insert into triples (subject, predicate, object, object_kind, confidence, source_id) " +
            "select s, p, o, k, c, $6 from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::real[]) with ordinality as t(s, p, o, k, c, n) order by n returning id",
            transaction,
            triples.Select(t => t.Subject).ToArray(),
            triples.Select(t => t.Predicate).ToArray(),
            triples.Select(t => t.Object).ToArray(),
            triples.Select(t => t.Kind == ObjectKind.Entity ? "entity" : "literal").ToArray(),
            triples.Select(t => t.Confidence).ToArray(),
            new NpgsqlParameter { Value = (object?)sourceId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        var ids = new List<long>(triples.Count);
        await using var reader = await insert.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            ids.Add(reader.GetInt64(0));
        }

        return ids;
    }

    // Fires the deferred feed triggers now (they would at commit) and reads the number they gave this commit.
    private static async Task<FeedPosition> NumberAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken ct)
    {
        await using (var immediate = Database.Command(connection, "set constraints all immediate", transaction))
        {
            await immediate.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await using var seq = Database.Command(connection, "select seq, commit_id from feed_commits where txid = pg_current_xact_id()", transaction);
        await using var reader = await seq.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        return new FeedPosition(reader.GetInt64(0), reader.GetGuid(1));
    }
}
