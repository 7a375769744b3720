using System.Data;
using MemoryCluster.Compute.Store;
using NpgsqlTypes;

namespace MemoryCluster.Compute.Feed;

/// <summary>The database's history does not hold the commit this process applied last: it must load everything again.</summary>
public sealed class FeedDivergedException(string reason) : Exception(reason);

/// <summary>Reads the change feed (I/O only: what to do with it is <see cref="FeedContinuity"/>'s and the model's).</summary>
public static class FeedReader
{
    private const string ReadSql =
        "select c.seq, c.commit_id, c.committed_at, ch.relation, ch.op, ch.image::text " +
        "from feed_commits c left join feed_changes ch on ch.txid = c.txid " +
        "where c.seq > $1 and c.seq <= $2 order by c.seq, ch.n";

    /// <summary>
    /// The commits after <paramref name="applied"/>, at most <paramref name="maxCommits"/>, in commit order. First, on
    /// the same connection, it checks that <paramref name="applied"/> is in this server's history: a read that reaches
    /// another server (a failover, a broken pooled connection replaced by one to the new primary) must not go on from
    /// a number another history gave another commit. Throws <see cref="FeedDivergedException"/> when it is not.
    /// </summary>
    public static Task<IReadOnlyList<FeedCommit>> ReadAsync(Database database, FeedPosition applied, int maxCommits, CancellationToken cancellationToken) =>
        database.RunAsync<IReadOnlyList<FeedCommit>>("read feed", async (connection, ct) =>
        {
            var after = applied.Seq;
            if (after > 0 && await VerdictAsync(connection, applied, ct).ConfigureAwait(false) is FeedVerdict.Diverged diverged)
            {
                throw new FeedDivergedException(diverged.Reason);
            }

            await using var command = Database.Command(connection, ReadSql, null, after, after + maxCommits);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            var commits = new List<FeedCommit>();
            List<FeedChange>? changes = null;
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var seq = reader.GetInt64(0);
                if (commits.Count == 0 || commits[^1].Seq != seq)
                {
                    var expected = commits.Count == 0 ? after + 1 : commits[^1].Seq + 1;
                    if (seq != expected)
                    {
                        throw new InvalidOperationException($"the feed skips from commit {expected - 1} to {seq}: its numbers must be dense");
                    }

                    changes = [];
                    commits.Add(new FeedCommit(seq, reader.GetGuid(1), new DateTimeOffset(reader.GetDateTime(2)).ToUnixTimeMilliseconds(), changes));
                }

                if (!reader.IsDBNull(3))
                {
                    changes!.Add(FeedDecoder.Decode(reader.GetString(3), reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5)));
                }
            }

            return commits;
        }, cancellationToken);

    /// <summary>Whether this process may go on from <paramref name="applied"/> on this database.</summary>
    public static Task<FeedVerdict> CheckAsync(Database database, FeedPosition applied, CancellationToken cancellationToken) =>
        database.RunAsync("check feed position", (connection, ct) => VerdictAsync(connection, applied, ct), cancellationToken);

    // The head and the id this server has for the applied commit's number, judged by FeedContinuity.
    private static async Task<FeedVerdict> VerdictAsync(Npgsql.NpgsqlConnection connection, FeedPosition applied, CancellationToken ct)
    {
        await using var command = Database.Command(connection,
            "select h.seq, c.commit_id from feed_head h left join feed_commits c on c.seq = $1", null, applied.Seq);
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        return FeedContinuity.Check(applied, reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetGuid(1));
    }

    /// <summary>Deletes the commits older than <paramref name="keep"/> (never the last one); returns how many went.</summary>
    public static Task<long> PruneAsync(Database database, TimeSpan keep, CancellationToken cancellationToken) =>
        database.RunAsync("prune feed", async (connection, ct) =>
        {
            await using var command = Database.Command(connection, "select feed_prune($1)", null, keep);
            return (long)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }, cancellationToken);

    /// <summary>The number of the last commit.</summary>
    public static Task<long> HeadAsync(Database database, CancellationToken cancellationToken) =>
        database.RunAsync("read feed head", async (connection, ct) =>
        {
            await using var command = Database.Command(connection, "select seq from feed_head");
            return (long)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }, cancellationToken);

    /// <summary>
    /// Everything in one snapshot: the position it is at, then every triple and embedding by binary COPY, handed to
    /// the callbacks as they stream. A replica may serve it (the snapshot is as consistent there); the position is
    /// then checked against the primary like any other.
    /// </summary>
    public static Task<FeedPosition> LoadAsync(Database database, Action<TripleRow> triple, Action<EmbeddingRow> embedding, CancellationToken cancellationToken) =>
        database.InTransactionAsync("bulk load", IsolationLevel.RepeatableRead, async (connection, transaction, ct) =>
        {
            FeedPosition position;
            await using (var head = Database.Command(connection, "select h.seq, c.commit_id from feed_head h left join feed_commits c on c.seq = h.seq", transaction))
            await using (var reader = await head.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                await reader.ReadAsync(ct).ConfigureAwait(false);
                position = new FeedPosition(reader.GetInt64(0), reader.IsDBNull(1) ? Guid.Empty : reader.GetGuid(1));
            }

            await using (var copy = await connection.BeginBinaryExportAsync(
                "copy (select id, subject, predicate, object, object_kind, confidence, source_id, valid_from, valid_to, superseded_by from triples order by id) to stdout (format binary)", ct).ConfigureAwait(false))
            {
                // Rows are read synchronously within each buffer (a field at a time, async per field costs about
                // half the load); the row's start awaits the network.
                while (await copy.StartRowAsync(ct).ConfigureAwait(false) != -1)
                {
                    var id = copy.Read<long>(NpgsqlDbType.Bigint);
                    var subject = copy.Read<string>(NpgsqlDbType.Text);
                    var predicate = copy.Read<string>(NpgsqlDbType.Text);
                    var obj = copy.Read<string>(NpgsqlDbType.Text);
                    var kind = FeedDecoder.Kind(copy.Read<string>(NpgsqlDbType.Text));
                    var confidence = copy.Read<float>(NpgsqlDbType.Real);
                    long? source = copy.IsNull ? Skip(copy) : copy.Read<long>(NpgsqlDbType.Bigint);
                    var from = Millis(copy.Read<DateTime>(NpgsqlDbType.TimestampTz));
                    long? to = copy.IsNull ? Skip(copy) : Millis(copy.Read<DateTime>(NpgsqlDbType.TimestampTz));
                    long? by = copy.IsNull ? Skip(copy) : copy.Read<long>(NpgsqlDbType.Bigint);
                    triple(new TripleRow(id, subject, predicate, obj, kind, confidence, source, from, to, by));
                }
            }

            await using (var copy = await connection.BeginBinaryExportAsync("copy (select entity, model, vector from embeddings) to stdout (format binary)", ct).ConfigureAwait(false))
            {
                while (await copy.StartRowAsync(ct).ConfigureAwait(false) != -1)
                {
                    var entity = copy.Read<string>(NpgsqlDbType.Text);
                    var model = copy.Read<string>(NpgsqlDbType.Text);
                    var vector = copy.Read<float[]>(NpgsqlDbType.Array | NpgsqlDbType.Real);
                    embedding(new EmbeddingRow(entity, model, vector));
                }
            }

            return position;
        }, cancellationToken);

    private static long? Skip(Npgsql.NpgsqlBinaryExporter copy)
    {
        copy.Skip();
        return null;
    }

    private static long Millis(DateTime utc) => utc == DateTime.MaxValue ? long.MaxValue : utc == DateTime.MinValue ? long.MinValue : new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc)).ToUnixTimeMilliseconds();
}
