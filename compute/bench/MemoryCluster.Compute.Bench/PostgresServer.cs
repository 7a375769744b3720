using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace MemoryCluster.Compute.Bench;

/// <summary>
/// A throwaway PostgreSQL 15 on 127.0.0.1: initdb into a temporary folder owned by the postgres
/// user, the postmaster run as our direct child through setpriv, stopped and deleted on dispose.
/// </summary>
internal sealed class PostgresServer : IDisposable
{
    private readonly string _root;
    private readonly Process _postmaster;

    private PostgresServer(string root, Process postmaster, int port)
    {
        _root = root;
        _postmaster = postmaster;
        ConnectionString = $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Pooling=false;Timeout=30;Command Timeout=600";
    }

    public string ConnectionString { get; }

    /// <param name="binDir">PostgreSQL's programs.</param>
    /// <param name="durable">fsync and synchronous commit on, as in production (the service's write latency).</param>
    public static PostgresServer Start(string binDir, bool durable = false)
    {
        var root = Directory.CreateTempSubdirectory("mc-bench-pg-").FullName;
        Process? postmaster = null;
        try
        {
            Run("chown", root, "postgres:postgres", root);
            var data = Path.Combine(root, "data");
            AsPostgres(root, Path.Combine(binDir, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--locale=C", "-E", "UTF8", "--no-sync").WaitAndCheck("initdb");
            var port = FreePort();
            postmaster = AsPostgres(
                root, Path.Combine(binDir, "postgres"), "-D", data, "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "-k", root, "-c", "listen_addresses=127.0.0.1", "-c", durable ? "fsync=on" : "fsync=off", "-c", durable ? "synchronous_commit=on" : "synchronous_commit=off",
                "-c", "shared_buffers=256MB", "-c", "work_mem=64MB", "-c", "max_wal_size=4GB");
            var server = new PostgresServer(root, postmaster, port);
            server.WaitReady();
            return server;
        }
        catch
        {
            Stop(postmaster);
            TryDelete(root);
            throw;
        }
    }

    public void Dispose()
    {
        Stop(_postmaster);
        _postmaster.Dispose();
        TryDelete(_root);
    }

    private static void Stop(Process? postmaster)
    {
        if (postmaster is null || postmaster.HasExited)
        {
            return;
        }

        // SIGINT = fast shutdown; fall back to SIGKILL. The postmaster is our child, so we reap it.
        using (var kill = Process.Start("kill", ["-INT", postmaster.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            kill.WaitForExit();
        }

        if (!postmaster.WaitForExit(15_000))
        {
            postmaster.Kill();
            postmaster.WaitForExit();
        }
    }

    private static void TryDelete(string root)
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException e)
        {
            Log.Line($"graph: could not delete {root}: {e.Message}");
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static Process AsPostgres(string workingDirectory, params string[] command)
    {
        var start = new ProcessStartInfo("setpriv")
        {
            WorkingDirectory = workingDirectory,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { "--reuid=postgres", "--regid=postgres", "--init-groups", "--reset-env" }.Concat(command))
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start setpriv.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Run(string file, string workingDirectory, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { WorkingDirectory = workingDirectory, UseShellExecute = false })
            ?? throw new InvalidOperationException($"Could not start {file}.");
        process.WaitAndCheck(file);
    }

    private void WaitReady()
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var connection = new NpgsqlConnection(ConnectionString);
                connection.Open();
                return;
            }
            catch (NpgsqlException) when (deadline.Elapsed < TimeSpan.FromSeconds(30) && !_postmaster.HasExited)
            {
                Thread.Sleep(100);
            }
        }
    }
}

internal static class ProcessExtensions
{
    public static void WaitAndCheck(this Process process, string what)
    {
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{what} failed with exit code {process.ExitCode}.");
        }
    }
}
