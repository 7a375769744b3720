namespace MemoryCluster.Api;

/// <summary>
/// Default values of a MemoryCluster spec. The spec types carry them as property initialisers, so a spec read
/// from JSON with fields missing is already defaulted, and the CRD's <c>default:</c> values are generated
/// from the same initialisers.
/// </summary>
public static class Defaults
{
    public const string StorageSize = "1Gi";
    public const int EmbeddingDimensions = 384;
    public const string HostnameTopologyKey = "kubernetes.io/hostname";
    public const string ZoneTopologyKey = "topology.kubernetes.io/zone";

    /// <summary>
    /// postgresql.conf parameters the instance manager sets itself; a spec may not set them, because a wrong
    /// value would break replication, fencing or the manager's view of the server.
    /// </summary>
    public static IReadOnlyList<string> ManagedParameters { get; } =
    [
        "port",
        "listen_addresses",
        "unix_socket_directories",
        "data_directory",
        "config_file",
        "hba_file",
        "ident_file",
        "external_pid_file",
        "cluster_name",
        "wal_level",
        "wal_log_hints",
        "hot_standby",
        "primary_conninfo",
        "primary_slot_name",
        "synchronous_standby_names",
        "restore_command",
        "promote_trigger_file",
        "logging_collector",
        "log_destination",
        "recovery_target",
        "recovery_target_action",
        "recovery_target_inclusive",
        "recovery_target_lsn",
        "recovery_target_name",
        "recovery_target_time",
        "recovery_target_timeline",
        "recovery_target_xid",

        // Also written by the manager (a spec value would be overridden without a word), or what replication,
        // pg_rewind and quorum commit rely on.
        "unix_socket_permissions",
        "full_page_writes",
        "hot_standby_feedback",
        "max_wal_senders",
        "max_replication_slots",
        "wal_keep_size",
        "wal_receiver_timeout",
        "wal_sender_timeout",
        "wal_retrieve_retry_interval",
        "wal_receiver_status_interval",
        "synchronous_commit",
        "archive_mode",
        "archive_command",
        "archive_library",
        "archive_cleanup_command",
        "recovery_end_command",
        "log_line_prefix",
        "password_encryption",

        // Directives, not parameters: they would read files the manager does not check.
        "include",
        "include_dir",
        "include_if_exists",
    ];

    /// <summary>Parameters whose name starts with this prefix are managed too (recovery targets).</summary>
    public const string ManagedParameterPrefix = "recovery_target";

    /// <summary>
    /// The CEL form of the managed-parameter rule on <c>spec.postgres.parameters</c>. It tests each name with
    /// <c>has()</c>, a constant-cost lookup: a rule that iterated the map's keys would have an unbounded
    /// estimated cost (map keys have no maxLength) and the API server would refuse the CRD. CEL therefore sees
    /// exact lower-case names only; <see cref="IsManagedParameter"/> also refuses other spellings and prefixes.
    /// </summary>
    public const string ManagedParametersCel =
        "!has(self.port) && " +
        "!has(self.listen_addresses) && " +
        "!has(self.unix_socket_directories) && " +
        "!has(self.data_directory) && " +
        "!has(self.config_file) && " +
        "!has(self.hba_file) && " +
        "!has(self.ident_file) && " +
        "!has(self.external_pid_file) && " +
        "!has(self.cluster_name) && " +
        "!has(self.wal_level) && " +
        "!has(self.wal_log_hints) && " +
        "!has(self.hot_standby) && " +
        "!has(self.primary_conninfo) && " +
        "!has(self.primary_slot_name) && " +
        "!has(self.synchronous_standby_names) && " +
        "!has(self.restore_command) && " +
        "!has(self.promote_trigger_file) && " +
        "!has(self.logging_collector) && " +
        "!has(self.log_destination) && " +
        "!has(self.recovery_target) && " +
        "!has(self.recovery_target_action) && " +
        "!has(self.recovery_target_inclusive) && " +
        "!has(self.recovery_target_lsn) && " +
        "!has(self.recovery_target_name) && " +
        "!has(self.recovery_target_time) && " +
        "!has(self.recovery_target_timeline) && " +
        "!has(self.recovery_target_xid) && " +
        "!has(self.unix_socket_permissions) && " +
        "!has(self.full_page_writes) && " +
        "!has(self.hot_standby_feedback) && " +
        "!has(self.max_wal_senders) && " +
        "!has(self.max_replication_slots) && " +
        "!has(self.wal_keep_size) && " +
        "!has(self.wal_receiver_timeout) && " +
        "!has(self.wal_sender_timeout) && " +
        "!has(self.wal_retrieve_retry_interval) && " +
        "!has(self.wal_receiver_status_interval) && " +
        "!has(self.synchronous_commit) && " +
        "!has(self.archive_mode) && " +
        "!has(self.archive_command) && " +
        "!has(self.archive_library) && " +
        "!has(self.archive_cleanup_command) && " +
        "!has(self.recovery_end_command) && " +
        "!has(self.log_line_prefix) && " +
        "!has(self.password_encryption) && " +
        "!has(self.include) && " +
        "!has(self.include_dir) && " +
        "!has(self.include_if_exists)";

    /// <summary>Whether the instance manager owns the parameter of this name (names are case-insensitive).</summary>
    public static bool IsManagedParameter(string name)
    {
        var lower = name.ToLowerInvariant();
        return ManagedParameters.Contains(lower) || lower.StartsWith(ManagedParameterPrefix, StringComparison.Ordinal);
    }
}
