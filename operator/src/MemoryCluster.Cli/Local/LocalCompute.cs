using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Npgsql;

namespace MemoryCluster.Cli.Local;

/// <summary>
/// The local cluster's compute service (`memorycluster compute` beside the instances, as the operator's
/// NAME-compute Deployment is in Kubernetes): its folder under the cluster's, a port chosen once, a write token
/// in the secrets folder, and the primary reached through every instance (target_session_attrs=read-write).
/// </summary>
internal sealed class LocalCompute(LocalLayout layout)
{
    public string Directory => Path.Combine(layout.Directory, "compute");

    public string PidFile => Path.Combine(Directory, "compute.pid");

    public string LogFile => Path.Combine(Directory, "compute.log");

    public string PortFile => Path.Combine(Directory, "port");

    public string TokenFile => Path.Combine(layout.Secrets, "compute.token");

    /// <summary>Where it keeps its local snapshot (a restart reads it instead of loading everything).</summary>
    public string SnapshotDirectory => Path.Combine(Directory, "snapshot");

    /// <summary>Whether this cluster runs a compute service (unless `local up --no-compute` said otherwise, once).</summary>
    public bool Enabled => !File.Exists(Path.Combine(Directory, "disabled"));

    /// <summary>Remembers that this cluster runs without a compute service.</summary>
    public void Disable()
    {
        System.IO.Directory.CreateDirectory(Directory);
        File.WriteAllText(Path.Combine(Directory, "disabled"), "local up --no-compute\n");
    }

    /// <summary>The HTTP address, once a port was chosen (the first start); null before.</summary>
    public Uri? Url => File.Exists(PortFile) ? new Uri($"http://{LocalLayout.Host}:{File.ReadAllText(PortFile).Trim()}") : null;

    /// <summary>The primary through every instance, and a replica for the load, as Npgsql connection strings.</summary>
    public string ConnectionString(bool readOnly) => new NpgsqlConnectionStringBuilder
    {
        Host = string.Join(',', layout.Members.Select(m => $"{m.Host}:{m.PgPort}")),
        Database = "app",
        Username = "app",
        TargetSessionAttributes = readOnly ? "prefer-standby" : "read-write",
        Timeout = 2,
    }.ConnectionString;

    public int? RunningPid()
    {
        if (!File.Exists(PidFile) || !int.TryParse(File.ReadAllText(PidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            return null;
        }

        // Ours only while /proc shows our compute under it (pids are reused).
        var cmdline = $"/proc/{pid}/cmdline";
        return File.Exists(cmdline) && File.ReadAllText(cmdline).Contains(TokenFile, StringComparison.Ordinal) ? pid : null;
    }

    /// <summary>Starts it detached (its own session), unless it runs; the port and the token are made on the first start.</summary>
    public void Start()
    {
        if (RunningPid() is not null)
        {
            return;
        }

        System.IO.Directory.CreateDirectory(Directory);

        if (!File.Exists(TokenFile))
        {
            File.WriteAllText(TokenFile, Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant());
            File.SetUnixFileMode(TokenFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        var (program, prefix) = LocalCluster.SelfCommand();
        string[] args =
        [
            .. prefix, "compute",
            "--rw", ConnectionString(readOnly: false),
            "--ro", ConnectionString(readOnly: true),
            "--password-file", layout.AppPasswordFile,
            "--token-file", TokenFile,
            "--host", LocalLayout.Host,
            "--snapshot-dir", SnapshotDirectory,
            // The first start binds a port the system chooses and records it: a port probed here and bound later
            // could be taken in between (by another cluster starting beside this one). Later starts keep it.
            .. File.Exists(PortFile) ? ["--port", File.ReadAllText(PortFile).Trim()] : (string[])["--port", "0", "--port-file", PortFile],
        ];
        var command = "exec setsid " + LocalCluster.Quote(program) + " " + string.Join(' ', args.Select(LocalCluster.Quote)) + " >> " + LocalCluster.Quote(LogFile) + " 2>&1 < /dev/null";
        using var process = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", command]) { UseShellExecute = false, WorkingDirectory = layout.Directory })!;
        File.WriteAllText(PidFile, process.Id.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Its /status document, or null when it does not run or does not answer within 2 s.</summary>
    public async Task<System.Text.Json.JsonElement?> StatusAsync(CancellationToken cancellationToken)
    {
        if (Url is not { } url || RunningPid() is null)
        {
            return null;
        }

        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            var text = await http.GetStringAsync(new Uri("/status", UriKind.Relative), cancellationToken).ConfigureAwait(false);
            return System.Text.Json.JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>The line under `local status`'s table: whether it runs, its phase, position and size (pure).</summary>
    public static string StatusLine(bool enabled, bool running, Uri? url, System.Text.Json.JsonElement? status)
    {
        if (!enabled)
        {
            return "compute:    not run in this cluster (local up --no-compute)\n";
        }

        if (!running)
        {
            return "compute:    not running (`local up` starts it)\n";
        }

        if (status is not { } s)
        {
            return $"compute:    running at {url}, not answering /status\n";
        }

        var ready = s.GetProperty("ready").GetBoolean();
        var line = $"compute:    {(ready ? "ready" : s.GetProperty("phase").GetString())}, feed commit {s.GetProperty("seq").GetInt64()}, "
            + $"{s.GetProperty("triples").GetInt32().ToString("N0", CultureInfo.InvariantCulture)} triples, {url}";
        if (s.TryGetProperty("lastError", out var error) && error.ValueKind == System.Text.Json.JsonValueKind.String)
        {
            line += $" (last error: {error.GetString()})";
        }

        return line + "\n";
    }

    /// <summary>Waits until it answers /readyz (loaded and caught up with the feed).</summary>
    public async Task<bool> WaitReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout && RunningPid() is not null)
        {
            try
            {
                // On the first start the port is known once it listens.
                if (Url is not { } url)
                {
                    await Task.Delay(100, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                using var response = await http.GetAsync(new Uri(url, "/readyz"), cancellationToken).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    return true;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Not listening yet.
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        return false;
    }

    /// <summary>The log's last lines (what a failed start says about why).</summary>
    public IReadOnlyList<string> LogTail(int lines) => File.Exists(LogFile) ? [.. File.ReadLines(LogFile).TakeLast(lines)] : [];

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace, CancellationToken cancellationToken)
    {
        if (RunningPid() is not { } pid)
        {
            return;
        }

        LocalCluster.Signal(pid, 15);
        var watch = Stopwatch.StartNew();
        while (Path.Exists($"/proc/{pid}") && watch.Elapsed < grace)
        {
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        if (Path.Exists($"/proc/{pid}"))
        {
            LocalCluster.Signal(pid, 9);
        }

        File.Delete(PidFile);
    }
}
