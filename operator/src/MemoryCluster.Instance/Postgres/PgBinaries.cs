using System.Diagnostics;
using System.Runtime.InteropServices;

namespace MemoryCluster.Instance.Postgres;

/// <summary>Where the PostgreSQL programs are, and which OS user runs them.</summary>
/// <param name="BinDirectory">Folder holding postgres, initdb, pg_basebackup, pg_rewind, pg_controldata.</param>
/// <param name="RunAs">
/// OS user to run PostgreSQL as, or null to run it as the manager's own user. PostgreSQL refuses to run as
/// root, so a manager started as root runs it as <c>postgres</c> through <c>setpriv</c>, which replaces itself
/// with the program: the postmaster stays the manager's direct child, to signal and to reap.
/// </param>
internal sealed partial record PgBinaries(string BinDirectory, string? RunAs)
{
    /// <summary>Finds the programs: an explicit folder, else <c>pg_config --bindir</c>, else the newest /usr/lib/postgresql/*/bin.</summary>
    public static PgBinaries Locate(string? binDirectory, string? runAs)
    {
        var directory = binDirectory ?? FromPgConfig() ?? NewestUnderUsrLib()
            ?? throw new InvalidOperationException("no PostgreSQL found: set --pg-bin-dir, or install PostgreSQL 15 (pg_config not on PATH, nothing under /usr/lib/postgresql/*/bin)");
        if (!File.Exists(Path.Combine(directory, "postgres")))
        {
            throw new InvalidOperationException($"pg-bin-dir {directory} holds no 'postgres' program");
        }

        var user = runAs ?? (Environment.UserName == "root" || IsRoot() ? "postgres" : null);
        return new PgBinaries(directory, user == Environment.UserName ? null : user);
    }

    public string PathOf(string program) => Path.Combine(BinDirectory, program);

    /// <summary>A start description for <paramref name="program"/>, wrapped in setpriv when it must change user.</summary>
    public ProcessStartInfo StartInfo(string program, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            // A folder every user can enter: tools started elsewhere print "could not change directory".
            WorkingDirectory = "/",
        };
        if (RunAs is null)
        {
            start.FileName = PathOf(program);
        }
        else
        {
            start.FileName = "setpriv";
            foreach (var arg in new[] { $"--reuid={RunAs}", $"--regid={RunAs}", "--init-groups", "--reset-env", PathOf(program) })
            {
                start.ArgumentList.Add(arg);
            }
        }

        foreach (var arg in arguments)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["LC_ALL"] = "C.UTF-8";
        return start;
    }

    /// <summary>Makes <paramref name="path"/> (and what it holds) belong to the user PostgreSQL runs as.</summary>
    public void GiveToPostgres(string path)
    {
        if (RunAs is null)
        {
            return;
        }

        using var chown = Process.Start(new ProcessStartInfo("chown", ["-R", $"{RunAs}:", path]) { UseShellExecute = false })!;
        chown.WaitForExit();
        if (chown.ExitCode != 0)
        {
            throw new InvalidOperationException($"chown -R {RunAs} {path} failed with exit code {chown.ExitCode}");
        }
    }

    /// <summary>
    /// Makes one file or folder (not what it holds) belong to the user PostgreSQL runs as: chown(2), no process
    /// started, for the configuration files written at every role change.
    /// </summary>
    public void GiveFileToPostgres(string path)
    {
        if (RunAs is null)
        {
            return;
        }

        var (uid, gid) = _owner ??= LookUp(RunAs);
        if (Chown(path, uid, gid) != 0)
        {
            throw new InvalidOperationException($"chown {RunAs} {path} failed (errno {Marshal.GetLastPInvokeError()})");
        }
    }

    private (int Uid, int Gid)? _owner;

    /// <summary>The user's uid and primary gid, from /etc/passwd.</summary>
    private static (int Uid, int Gid) LookUp(string user)
    {
        foreach (var line in File.ReadLines("/etc/passwd"))
        {
            var fields = line.Split(':');
            if (fields.Length > 3 && fields[0] == user
                && int.TryParse(fields[2], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var uid)
                && int.TryParse(fields[3], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var gid))
            {
                return (uid, gid);
            }
        }

        throw new InvalidOperationException($"no user '{user}' in /etc/passwd");
    }

    [LibraryImport("libc", EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Chown(string path, int uid, int gid);

    private static bool IsRoot() => File.Exists("/proc/self/status")
        && File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal))?.Split('\t', StringSplitOptions.RemoveEmptyEntries) is [_, "0", ..];

    private static string? FromPgConfig()
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("pg_config", "--bindir") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (process is null)
            {
                return null;
            }

            var output = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit();
            return process.ExitCode == 0 && File.Exists(Path.Combine(output, "postgres")) ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static string? NewestUnderUsrLib() =>
        Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "postgres")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0)
                .FirstOrDefault()
            : null;
}
