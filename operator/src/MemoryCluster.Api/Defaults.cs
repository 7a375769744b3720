namespace MemoryCluster.Api;

/// <summary>
/// Default values of a MemoryCluster spec. The spec types carry them as property initialisers, so a spec read
/// from JSON with fields missing is already defaulted, and the CRD's <c>default:</c> values are generated
/// from the same initialisers.
/// </summary>
public static class Defaults
{
    public const string PostgresImage = "ghcr.io/memorycluster/instance:15";
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
        "!has(self.recovery_target_xid)";

    /// <summary>Whether the instance manager owns the parameter of this name (names are case-insensitive).</summary>
    public static bool IsManagedParameter(string name)
    {
        var lower = name.ToLowerInvariant();
        return ManagedParameters.Contains(lower) || lower.StartsWith(ManagedParameterPrefix, StringComparison.Ordinal);
    }
}
