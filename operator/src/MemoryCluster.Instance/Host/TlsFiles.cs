using MemoryCluster.Instance.Postgres;

namespace MemoryCluster.Instance.Host;

/// <summary>
/// PostgreSQL's copies of the TLS files. The mounted files (a Kubernetes Secret volume: <c>root:fsGroup</c>, 0440; in a
/// local cluster whatever the caller made) are copied into <see cref="InstanceOptions.TlsDirectory"/>, owned by the user
/// PostgreSQL runs as, the key with mode 0600: PostgreSQL refuses a key readable by group or others unless root owns it
/// (then 0640 at most), and a manager running as root could not hand it a root-owned 0400 file at all. Each file is
/// replaced whole (written beside, then renamed), so PostgreSQL never reads half of one. Only I/O.
/// </summary>
internal sealed class TlsFiles(TlsFileSettings mounted, string directory, PgBinaries binaries)
{
    /// <summary>The copies PostgreSQL reads (postgresql.conf names them).</summary>
    public PostgresTls Copies { get; } = new(Path.Combine(directory, "server.crt"), Path.Combine(directory, "server.key"), Path.Combine(directory, "ca.crt"));

    /// <summary>The copies for <paramref name="options"/>; null when it sets no TLS files.</summary>
    public static TlsFiles? For(InstanceOptions options, PgBinaries binaries)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Tls is { } tls ? new TlsFiles(tls, options.TlsDirectory, binaries) : null;
    }

    /// <summary>
    /// Copies every mounted file whose content differs from its copy; true when any did (PostgreSQL, if it runs, must
    /// reload to serve them). Throws when a mounted file cannot be read: the caller decides whether that is fatal.
    /// </summary>
    public bool Sync()
    {
        if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory);
            File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            binaries.GiveFileToPostgres(directory);
        }

        // The key last: a reload that comes in between (the supervisor reloads for its own reasons) then sees a new
        // certificate with the old key, which PostgreSQL refuses, keeping the certificate it serves until our reload.
        var changed = false;
        foreach (var (from, to) in new[] { (mounted.CaFile, Copies.CaFile), (mounted.CertificateFile, Copies.CertificateFile), (mounted.KeyFile, Copies.KeyFile) })
        {
            var content = File.ReadAllBytes(from);
            if (File.Exists(to) && File.ReadAllBytes(to).AsSpan().SequenceEqual(content))
            {
                continue;
            }

            var temp = to + ".new";
            File.WriteAllBytes(temp, content);
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            binaries.GiveFileToPostgres(temp);
            File.Move(temp, to, overwrite: true);
            changed = true;
        }

        return changed;
    }
}
