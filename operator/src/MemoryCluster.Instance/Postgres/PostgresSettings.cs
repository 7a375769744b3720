using System.Globalization;
using System.Text;

namespace MemoryCluster.Instance.Postgres;

/// <summary>What an instance's postgresql.conf must say, for its current role.</summary>
/// <param name="Port">TCP port PostgreSQL listens on.</param>
/// <param name="ListenAddresses">Addresses to listen on (comma-separated).</param>
/// <param name="SocketDirectory">Folder for the Unix socket, private to this instance.</param>
/// <param name="ClusterName">Shown in process titles; the instance name.</param>
/// <param name="Upstream">For a replica: where to stream from. Null on the primary.</param>
/// <param name="SynchronousStandbyNames">In quorum mode, e.g. <c>ANY 1 ("b", "c")</c>, on every member (a standby ignores it until promoted); empty in async mode.</param>
/// <param name="ParametersInclude">The checked copy of the user's parameters, included before the managed settings (null: none).</param>
/// <param name="Tls">The certificate files PostgreSQL serves TLS with; null: no TLS.</param>
internal sealed record PostgresSettings(
    int Port,
    string ListenAddresses,
    string SocketDirectory,
    string ClusterName,
    ReplicationSource? Upstream,
    string SynchronousStandbyNames,
    string? ParametersInclude,
    PostgresTls? Tls = null);

/// <summary>The files PostgreSQL reads for TLS (the manager's private copies; the key has mode 0600).</summary>
/// <param name="CertificateFile">Server certificate.</param>
/// <param name="KeyFile">Its private key.</param>
/// <param name="CaFile">The cluster's CA certificate (<c>ssl_ca_file</c>, and <c>sslrootcert</c> of replication).</param>
internal sealed record PostgresTls(string CertificateFile, string KeyFile, string CaFile);

/// <summary>Where a replica streams from.</summary>
/// <param name="Host">Host of the primary.</param>
/// <param name="Port">PostgreSQL port of the primary.</param>
/// <param name="User">Replication role.</param>
/// <param name="PasswordFile">A passfile (libpq format) holding the replication password; never inlined.</param>
/// <param name="ApplicationName">This instance's name, as the primary will see it.</param>
/// <param name="SlotName">The physical slot kept for this instance on the primary.</param>
/// <param name="SslRootCert">
/// The cluster's CA: with it the connection requires TLS and checks that the upstream's certificate chains to that CA
/// and names the host connected to (<c>sslmode=verify-full</c>); null: libpq's default (TLS if offered, unchecked).
/// </param>
internal sealed record ReplicationSource(string Host, int Port, string User, string PasswordFile, string ApplicationName, string SlotName, string? SslRootCert = null)
{
    /// <summary>The libpq connection string for <c>primary_conninfo</c>, pg_basebackup and pg_rewind.</summary>
    public string ConnInfo =>
        string.Create(CultureInfo.InvariantCulture, $"host={Quote(Host)} port={Port} user={Quote(User)} passfile={Quote(PasswordFile)} application_name={Quote(ApplicationName)} connect_timeout=2 keepalives_idle=2 keepalives_interval=1 keepalives_count=2")
        + (SslRootCert is null ? string.Empty : $" sslmode=verify-full sslrootcert={Quote(SslRootCert)}");

    private static string Quote(string value) =>
        value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '/' or ':')
            ? value
            : "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
}

/// <summary>Renders postgresql.conf and pg_hba.conf. Pure: the same settings always give the same text.</summary>
internal static class PostgresConfigFiles
{
    /// <summary>
    /// Settings of the manager's choosing that <c>spec.postgres.parameters</c> may override. After a crash (a fence is
    /// a SIGKILL) PostgreSQL syncs the data directory before recovery: file by file (<c>fsync</c>) that took 2–3.5 s
    /// on every restart of a killed member here, one <c>syncfs(2)</c> per file system 2–74 ms (docs/api.md says when
    /// to choose <c>fsync</c> instead).
    /// </summary>
    private static readonly (string Key, string Value)[] OverridableDefaults = [("recovery_init_sync_method", "syncfs")];

    /// <summary>
    /// The whole postgresql.conf. The manager owns this file and rewrites it before every start and on every
    /// role change, so what pg_basebackup or pg_rewind copied from another instance never survives.
    /// </summary>
    public static string PostgresqlConf(PostgresSettings settings)
    {
        var lines = new List<(string Key, string Value)>
        {
            ("port", settings.Port.ToString(CultureInfo.InvariantCulture)),
            ("listen_addresses", settings.ListenAddresses),
            ("unix_socket_directories", settings.SocketDirectory),
            ("unix_socket_permissions", "0700"),
            ("cluster_name", settings.ClusterName),
            ("wal_level", "replica"),
            ("wal_log_hints", "on"),
            ("hot_standby", "on"),
            ("hot_standby_feedback", "on"),
            ("max_wal_senders", "10"),
            ("max_replication_slots", "10"),
            ("wal_keep_size", "128MB"),
            ("wal_receiver_timeout", "5s"),
            ("wal_sender_timeout", "5s"),
            ("wal_retrieve_retry_interval", "500ms"),

            // A live standby replies at least this often, so a silent one is seen within seconds (ReplicationLiveness).
            ("wal_receiver_status_interval", Node.ReplicationLiveness.StatusInterval),
            ("recovery_target_timeline", "latest"),
            ("logging_collector", "off"),
            ("log_destination", "stderr"),
            ("log_line_prefix", "%m [%p] "),
            ("password_encryption", "scram-sha-256"),
            ("synchronous_standby_names", settings.SynchronousStandbyNames),
            ("primary_conninfo", settings.Upstream?.ConnInfo ?? string.Empty),
            ("primary_slot_name", settings.Upstream?.SlotName ?? string.Empty),
        };
        if (settings.Tls is { } tls)
        {
            // Re-read on every reload (PostgreSQL 15): a renewed certificate is served without a restart.
            lines.Add(("ssl", "on"));
            lines.Add(("ssl_cert_file", tls.CertificateFile));
            lines.Add(("ssl_key_file", tls.KeyFile));
            lines.Add(("ssl_ca_file", tls.CaFile));
            lines.Add(("ssl_min_protocol_version", "TLSv1.2"));
        }

        var text = new StringBuilder("# Written by the memorycluster instance manager; rewritten on every start and role change.\n");

        void Write(IEnumerable<(string Key, string Value)> settings)
        {
            foreach (var (key, value) in settings)
            {
                text.Append(key).Append(" = ").Append(QuoteValue(value)).Append('\n');
            }
        }

        // Defaults first: the user's parameters, included below, win over them.
        Write(OverridableDefaults);

        if (settings.ParametersInclude is { } include)
        {
            // The user's parameters first (a missing copy is no error): everything below wins over them.
            text.Append("include_if_exists = ").Append(QuoteValue(include)).Append('\n');
        }

        // Managed settings come last so that they win over anything above.
        Write(lines);

        return text.ToString();
    }

    /// <summary>
    /// pg_hba.conf: the local socket (private to the instance's OS user) trusts the superuser, so the manager
    /// needs no password; everything over TCP uses SCRAM, and with <paramref name="tls"/> only over TLS
    /// (<c>hostssl</c>: a connection without TLS matches no line and is refused).
    /// </summary>
    public static string PgHbaConf(string replicationUser, bool tls = false)
    {
        var host = tls ? "hostssl" : "host   ";
        return "# Written by the memorycluster instance manager.\n" +
            "local   all           postgres                  trust\n" +
            "local   replication   postgres                  trust\n" +
            $"{host} replication   {replicationUser}    0.0.0.0/0    scram-sha-256\n" +
            $"{host} replication   {replicationUser}    ::/0         scram-sha-256\n" +
            $"{host} all           all                0.0.0.0/0    scram-sha-256\n" +
            $"{host} all           all                ::/0         scram-sha-256\n";
    }

    /// <summary>A postgresql.conf value in single quotes, with quotes and backslashes escaped.</summary>
    public static string QuoteValue(string value) =>
        "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// <c>synchronous_standby_names</c> for quorum mode: <c>ANY k (all other members)</c>, where k makes every
    /// acknowledged commit reach a Raft majority of the instances (the primary plus k standbys):
    /// k = ⌊n/2⌋, i.e. 1 of 2 standbys for 3 instances, 2 of 4 for 5. Empty in async mode.
    /// </summary>
    public static string SynchronousStandbyNames(bool quorum, IReadOnlyList<string> standbys, int voters)
    {
        if (!quorum || standbys.Count == 0)
        {
            return string.Empty;
        }

        var k = Node.MembershipPlanner.QuorumK(voters, standbys.Count);
        return string.Create(CultureInfo.InvariantCulture, $"ANY {k} ({string.Join(", ", standbys.Order(StringComparer.Ordinal).Select(s => "\"" + s + "\""))})");
    }
}
