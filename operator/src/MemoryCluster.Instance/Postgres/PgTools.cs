using System.Diagnostics;
using System.Text;

namespace MemoryCluster.Instance.Postgres;

/// <summary>A PostgreSQL program that exited with an error; the message carries the end of its output.</summary>
internal sealed class PgToolException(string message) : Exception(message);

/// <summary>Runs the PostgreSQL command-line programs to completion, with a time limit.</summary>
internal sealed class PgTools(PgBinaries binaries)
{
    /// <summary>Runs <paramref name="program"/>; returns its output, or throws with the output's tail when it fails.</summary>
    public async Task<string> RunAsync(string program, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var process = new Process { StartInfo = binaries.StartInfo(program, arguments) };
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            throw new PgToolException($"{program} did not finish within {timeout.TotalSeconds:0} s: {Tail()}");
        }

        process.WaitForExit(); // flushes the asynchronous output readers
        if (process.ExitCode != 0)
        {
            throw new PgToolException($"{program} exited with code {process.ExitCode}: {Tail()}");
        }

        lock (output)
        {
            return output.ToString();
        }

        void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (output)
            {
                output.Append(line).Append('\n');
            }
        }

        string Tail()
        {
            lock (output)
            {
                var text = output.ToString().Trim();
                return text.Length > 600 ? "..." + text[^600..] : text;
            }
        }
    }

    /// <summary>initdb with data checksums (so pg_rewind works later) and a trusted local superuser.</summary>
    public Task InitDbAsync(string dataDirectory, CancellationToken cancellationToken) =>
        RunAsync("initdb", ["-D", dataDirectory, "--data-checksums", "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"], TimeSpan.FromSeconds(60), cancellationToken);

    /// <summary>Clones the primary into <paramref name="dataDirectory"/> with pg_basebackup, streaming WAL, through this instance's slot.</summary>
    public Task BaseBackupAsync(string dataDirectory, ReplicationSource source, CancellationToken cancellationToken) =>
        RunAsync(
            "pg_basebackup",
            ["-D", dataDirectory, "-X", "stream", "-c", "fast", "--no-password", "-d", source.ConnInfo, "-S", source.SlotName],
            TimeSpan.FromMinutes(30),
            cancellationToken);

    /// <summary>Rewinds <paramref name="dataDirectory"/> to the timeline of the server at <paramref name="sourceConnInfo"/>.</summary>
    public Task<string> RewindAsync(string dataDirectory, string sourceConnInfo, CancellationToken cancellationToken) =>
        RunAsync("pg_rewind", ["-D", dataDirectory, "--source-server", sourceConnInfo, "--no-sync"], TimeSpan.FromMinutes(10), cancellationToken);

    /// <summary>Every parameter this PostgreSQL knows, one per line: name, context, group, type, ... (tab-separated).</summary>
    public Task<string> DescribeConfigAsync(CancellationToken cancellationToken) =>
        RunAsync("postgres", ["--describe-config"], TimeSpan.FromSeconds(20), cancellationToken);

    /// <summary>
    /// PostgreSQL's own check of a configuration file, as a start would read it (names and values; every error is
    /// fatal), without starting anything: <c>postgres -C</c> with <paramref name="configFile"/> as the configuration.
    /// <paramref name="directory"/> stands in for the data directory (it may be empty). Throws with PostgreSQL's words.
    /// </summary>
    public Task CheckConfigAsync(string directory, string configFile, CancellationToken cancellationToken) =>
        RunAsync("postgres", ["-D", directory, "-c", "config_file=" + configFile, "-C", "port"], TimeSpan.FromSeconds(20), cancellationToken);

    /// <summary>The fields of pg_controldata, by their label.</summary>
    public async Task<IReadOnlyDictionary<string, string>> ControlDataAsync(string dataDirectory, CancellationToken cancellationToken)
    {
        var text = await RunAsync("pg_controldata", ["-D", dataDirectory], TimeSpan.FromSeconds(20), cancellationToken).ConfigureAwait(false);
        return PgControlData.Parse(text);
    }
}

/// <summary>Reads pg_controldata's "label: value" lines.</summary>
internal static class PgControlData
{
    public static IReadOnlyDictionary<string, string> Parse(string text)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                fields[line[..colon].Trim()] = line[(colon + 1)..].Trim();
            }
        }

        return fields;
    }
}
