using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using MemoryCluster.Kube.Client;
using MemoryCluster.Kube.Resources;
using Microsoft.Extensions.Logging;

namespace MemoryCluster.Kube.Cluster.Node;

/// <summary>
/// One pod on the node: each round it reads the pod, makes its volumes, environment and hosts file, asks
/// <see cref="PodPlanner"/> what to do and does it (start, signal, probe, remove), and reports the status the plan
/// gives. Its containers run as processes in their own mount, UTS and PID namespaces (see <see cref="LaunchScript"/>).
/// When the pod is gone from the API, or the node stops, its processes are stopped and its folder removed (claims'
/// folders are the node's, not the pod's, and stay).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed partial class PodWorker
{
    private readonly NodeAgent _node;
    private readonly string _key;
    private readonly string _uid;
    private readonly string _dir;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, ContainerRuntime> _runtimes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Process> _processes = new(StringComparer.Ordinal);
    private readonly HashSet<(string, ProbeKind)> _probing = [];
    private readonly Signal _wake = new();
    private string? _lastStatus;
    private string? _lastHosts;

    // Each files volume as last written, by volume name (only RoundAsync writes volumes: one round at a time).
    private readonly Dictionary<string, FilesVolume> _written = new(StringComparer.Ordinal);
    private string? _token;
    private bool _userFiles;

    public PodWorker(NodeAgent node, string key, string uid, ILogger logger)
    {
        _node = node;
        _key = key;
        _uid = uid;
        _dir = Path.Combine(node.Options.StateDirectory, "pods", uid);
        _logger = logger;
    }

    public string Uid => _uid;

    /// <summary>The claims (NAMESPACE/NAME) this pod mounts.</summary>
    public IReadOnlySet<string> Claims { get; private set; } = new HashSet<string>();

    public void Wake() => _wake.Set();

    /// <summary>The pid (in the node's namespace) of the container's first process, while it runs.</summary>
    public int? PidOf(string container)
    {
        lock (_lock)
        {
            return _runtimes.GetValueOrDefault(container)?.Pid;
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var ip = _node.Pool.Take(_uid);
        Directory.CreateDirectory(_dir);
        var gone = false;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var found = _node.Pod(_key, _uid);
                if (found is null)
                {
                    gone = true;
                    return;
                }

                var pod = Workloads(found, ip);
                var now = _node.Time.GetUtcNow();
                PodPlan plan;
                try
                {
                    plan = await RoundAsync(pod, ip, now, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    // A round that failed (a file, a process, the API) is tried again; the containers and what is
                    // known of them stay.
                    // An API answer (a ServiceAccount not made yet, a Secret missing) is a line; anything else
                    // with its stack.
                    if (e is MemoryCluster.Kube.TestServer.ApiError or MemoryCluster.Kube.Client.KubeApiException)
                    {
                        LogRoundRefused(_logger, _key, e.Message);
                    }
                    else
                    {
                        LogRoundFailed(_logger, _key, e);
                    }

                    await Task.Delay(TimeSpan.FromSeconds(1), _node.Time, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var wait = plan.WakeAt - _node.Time.GetUtcNow();
                wait = wait < TimeSpan.FromMilliseconds(10) ? TimeSpan.FromMilliseconds(10) : wait > TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : wait;
                await _wake.WaitAsync(wait, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The node stops.
        }
        finally
        {
            await StopAllAsync().ConfigureAwait(false);
            _node.Pool.Free(_uid);
            if (gone)
            {
                KeepLogs();
                TryDelete(_dir);
            }
        }
    }

    // The pod as its containers see it: with its IP (known before the API shows it).
    private static V1Pod Workloads(V1Pod pod, string ip)
    {
        var copy = Controllers.Workloads.Copy(pod);
        copy.Status ??= new V1PodStatus();
        copy.Status.PodIP = ip;
        return copy;
    }

    private async Task<PodPlan> RoundAsync(V1Pod pod, string ip, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var ns = pod.Metadata.NamespaceProperty;
        var inputs = _node.Inputs(ns);
        var (volumes, volumeError) = PodVolumes.Plan(pod, inputs, _node.ClaimFolders(ns));
        var folders = new Dictionary<string, string>(StringComparer.Ordinal);
        if (volumeError is null)
        {
            foreach (var volume in volumes)
            {
                folders[volume.Name] = WriteVolume(volume, pod.Spec.SecurityContext?.FsGroup);
            }

            if (await ServiceAccountFilesAsync(pod, cancellationToken).ConfigureAwait(false) is { } account)
            {
                folders[LaunchPlanner.ServiceAccountVolume] = WriteVolume(account, pod.Spec.SecurityContext?.FsGroup);
            }
        }

        Claims = (pod.Spec.Volumes ?? []).Where(v => v.PersistentVolumeClaim is not null).Select(v => ns + "/" + v.PersistentVolumeClaim.ClaimName).ToHashSet(StringComparer.Ordinal);
        var errors = new Dictionary<string, string>(StringComparer.Ordinal);
        var environments = new Dictionary<string, ContainerEnvironment>(StringComparer.Ordinal);
        foreach (var container in pod.Spec.Containers ?? [])
        {
            var environment = PodEnvironment.Resolve(pod, container, inputs);
            environments[container.Name] = environment;
            if ((volumeError ?? environment.Error) is { } error)
            {
                errors[container.Name] = error;
            }
        }

        WriteHosts(pod);
        PodPlan plan;
        lock (_lock)
        {
            plan = PodPlanner.Plan(pod, new Dictionary<string, ContainerRuntime>(_runtimes), errors, ip, _node.Options.HostIp, now, _node.Options.Timings);
        }

        foreach (var action in plan.Actions)
        {
            switch (action)
            {
                case StartContainer start:
                    Start(pod, pod.Spec.Containers!.First(c => c.Name == start.Container), environments[start.Container], folders, now);
                    break;
                case StopContainer stop:
                    Stop(stop, now);
                    break;
                case RunProbe probe:
                    StartProbe(pod, probe, ip, environments[probe.Container]);
                    break;
                case RemovePod:
                    await RemoveAsync(pod, cancellationToken).ConfigureAwait(false);
                    break;
            }
        }

        await ReportAsync(pod, plan.Status, cancellationToken).ConfigureAwait(false);
        return plan;
    }

    // ---- containers ----

    private void Start(V1Pod pod, V1Container container, ContainerEnvironment environment, Dictionary<string, string> folders, DateTimeOffset now)
    {
        var files = new PodFiles(_dir, folders);
        var spec = LaunchPlanner.Plan(pod, container, environment.Variables, files, _node.Options.SearchPath,
            p => p.EndsWith('/') ? Directory.Exists(p) : Directory.Exists(p) || File.Exists(p));
        WriteUserFiles(spec.Uid, spec.Gid, spec.Groups);
        var restarts = 0;
        V1ContainerStateTerminated? last = null;
        lock (_lock)
        {
            if (_runtimes.TryGetValue(container.Name, out var before) && before.Run == ContainerRun.Exited)
            {
                restarts = before.Restarts + 1;
                last = PodPlanner.Terminated(before);
            }
        }

        TryDelete(Path.Combine(_dir, "overlays", container.Name));
        foreach (var (_, upper, work) in spec.Overlays)
        {
            Directory.CreateDirectory(upper);
            Directory.CreateDirectory(work);
        }

        Directory.CreateDirectory(Path.GetDirectoryName(spec.Log)!);
        var log = spec.Log;
        var script = files.Script(container.Name);
        File.WriteAllText(script, LaunchScript.Render(spec));

        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"exec unshare --mount --uts --pid --fork --mount-proc --kill-child --propagation private /bin/sh {LaunchScript.Quote(script)} >>{LaunchScript.Quote(log)} 2>&1");
        var process = Process.Start(start)!;
        var pid = FirstChild(process.Id);
        lock (_lock)
        {
            _processes[container.Name] = process;
            _runtimes[container.Name] = new ContainerRuntime(container.Name, ContainerRun.Running, now, Restarts: restarts, Pid: pid) { LastTermination = last };
        }

        LogStarted(_logger, _key, container.Name, pid ?? process.Id, restarts);
        _ = WatchAsync(container.Name, process);
    }

    private async Task WatchAsync(string container, Process process)
    {
        await process.WaitForExitAsync().ConfigureAwait(false);
        var now = _node.Time.GetUtcNow();
        lock (_lock)
        {
            if (_processes.GetValueOrDefault(container) == process)
            {
                _processes.Remove(container);
                var before = _runtimes[container];
                _runtimes[container] = before with { Run = ContainerRun.Exited, FinishedAt = now, ExitCode = process.ExitCode, Pid = null };
            }
        }

        LogExited(_logger, _key, container, process.ExitCode);
        process.Dispose();
        Wake();
    }

    /// <summary>The first process of the new PID namespace: unshare's child, once it has forked.</summary>
    private static int? FirstChild(int unshare)
    {
        var deadline = Environment.TickCount64 + 2000;
        while (Environment.TickCount64 < deadline)
        {
            try
            {
                var children = File.ReadAllText($"/proc/{unshare}/task/{unshare}/children").Trim();
                if (children.Length > 0)
                {
                    return int.Parse(children.Split(' ')[0], CultureInfo.InvariantCulture);
                }
            }
            catch (IOException)
            {
                return null;
            }

            Thread.Sleep(5);
        }

        return null;
    }

    private void Stop(StopContainer stop, DateTimeOffset now)
    {
        int? pid;
        lock (_lock)
        {
            if (!_runtimes.TryGetValue(stop.Container, out var state) || state.Run != ContainerRun.Running)
            {
                return;
            }

            pid = state.Pid;
            if (!stop.Kill)
            {
                _runtimes[stop.Container] = state with { StopSentAt = now, StopReason = stop.Why };
            }
        }

        if (pid is { } target)
        {
            LogSignal(_logger, _key, stop.Container, stop.Kill ? "SIGKILL" : "SIGTERM", target, stop.Why);
            _ = Kill(target, stop.Kill ? 9 : 15);
        }
        else if (stop.Kill)
        {
            // Its first process was never found: killing unshare kills it (--kill-child), and with it the namespace.
            KillUnshare(stop.Container);
        }
    }

    private void KillUnshare(string container)
    {
        Process? process;
        lock (_lock)
        {
            process = _processes.GetValueOrDefault(container);
        }

        try
        {
            process?.Kill();
        }
        catch (InvalidOperationException)
        {
            // Exited meanwhile.
        }
    }

    private void StartProbe(V1Pod pod, RunProbe probe, string ip, ContainerEnvironment environment)
    {
        int? pid;
        DateTimeOffset? started;
        lock (_lock)
        {
            if (!_probing.Add((probe.Container, probe.Kind)))
            {
                return;
            }

            pid = _runtimes.GetValueOrDefault(probe.Container)?.Pid;
            started = _runtimes.GetValueOrDefault(probe.Container)?.StartedAt;
        }

        var container = pod.Spec.Containers.First(c => c.Name == probe.Container);
        var uid = container.SecurityContext?.RunAsUser ?? pod.Spec.SecurityContext?.RunAsUser ?? 0;
        var gid = container.SecurityContext?.RunAsGroup ?? pod.Spec.SecurityContext?.RunAsGroup ?? 0;
        _ = Task.Run(async () =>
        {
            var ok = false;
            try
            {
                ok = await Probes.RunAsync(probe.Probe, container, ip, pid, (uid, gid, environment.Variables), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // A probe that cannot even run (no nsenter, a bad URL) fails, and runs again when due.
                LogProbeFailed(_logger, _key, probe.Container, e.Message);
            }
            finally
            {
                lock (_lock)
                {
                    _probing.Remove((probe.Container, probe.Kind));
                    if (_runtimes.TryGetValue(probe.Container, out var state) && state.Run == ContainerRun.Running && state.StartedAt == started)
                    {
                        _runtimes[probe.Container] = state.WithProbe(probe.Kind, state.Probe(probe.Kind).Record(ok, probe.Probe, _node.Time.GetUtcNow()));
                    }
                }

                Wake();
            }
        });
    }

    private async Task StopAllAsync()
    {
        List<(string Name, Process Process, int? Pid)> running;
        lock (_lock)
        {
            running = [.. _processes.Select(p => (p.Key, p.Value, _runtimes[p.Key].Pid))];
        }

        foreach (var (_, _, pid) in running)
        {
            if (pid is { } target)
            {
                _ = Kill(target, 15);
            }
        }

        foreach (var (_, process, pid) in running)
        {
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                if (pid is { } target)
                {
                    _ = Kill(target, 9);
                }
                else
                {
                    process.Kill();
                }

                using var last = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await process.WaitForExitAsync(last.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
        }
    }

    private async Task RemoveAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        try
        {
            await _node.Client.DeleteAsync(ResourceTypes.Pod, pod.Metadata.NamespaceProperty, pod.Metadata.Name,
                new V1DeleteOptions { GracePeriodSeconds = 0, Preconditions = new V1Preconditions { Uid = _uid } }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NotFoundException or ConflictException)
        {
            // Gone already, or another pod by that name now.
        }
    }

    private async Task ReportAsync(V1Pod pod, V1PodStatus status, CancellationToken cancellationToken)
    {
        var json = KubernetesJson.Serialize(status);
        if (json == _lastStatus)
        {
            return;
        }

        try
        {
            await _node.Client.PatchAsync(ResourceTypes.Pod, pod.Metadata.NamespaceProperty, pod.Metadata.Name,
                new MergePatch(new JsonObject { ["status"] = JsonNode.Parse(json) }), "status", cancellationToken).ConfigureAwait(false);
            _lastStatus = json;
        }
        catch (NotFoundException)
        {
            // Deleted meanwhile: the next round sees it.
        }
    }

    // ---- files ----

    private async Task<FilesVolume?> ServiceAccountFilesAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        if (pod.Spec.AutomountServiceAccountToken == false || _node.Options.ApiServer is not { } api)
        {
            return null;
        }

        _token ??= await _node.TokenAsync(pod.Metadata.NamespaceProperty, pod.Spec.ServiceAccountName ?? "default", cancellationToken).ConfigureAwait(false);
        var mode = PodVolumes.Mode(null, null, pod.Spec.SecurityContext?.FsGroup);
        return new FilesVolume(LaunchPlanner.ServiceAccountVolume,
        [
            new VolumeFile("token", Encoding.UTF8.GetBytes(_token), mode),
            new VolumeFile("ca.crt", Encoding.UTF8.GetBytes(api.CaPem), mode),
            new VolumeFile("namespace", Encoding.UTF8.GetBytes(pod.Metadata.NamespaceProperty), mode),
        ]);
    }

    /// <summary>Makes the volume's folder as the plan says and returns it.</summary>
    private string WriteVolume(VolumeSource volume, long? fsGroup)
    {
        switch (volume)
        {
            case FolderVolume folder:
                if (Directory.Exists(folder.Folder) && fsGroup is { } group && new DirectoryInfo(folder.Folder).UnixFileMode != Mode("2770"))
                {
                    _ = Chown(folder.Folder, 0, (int)group);
                    File.SetUnixFileMode(folder.Folder, Mode("2770"));
                }

                return folder.Folder;
            case EmptyVolume empty:
                var emptyDir = Path.Combine(_dir, "volumes", empty.Name);
                if (!Directory.Exists(emptyDir))
                {
                    Directory.CreateDirectory(emptyDir);
                    File.SetUnixFileMode(emptyDir, Mode("777"));
                }

                return emptyDir;
            case FilesVolume files:
                var dir = Path.Combine(_dir, "volumes", files.Name);

                // The files are this worker's alone: what it wrote last is what is there, so an unchanged volume
                // costs no disk reads (a round comes every second).
                var before = _written.GetValueOrDefault(files.Name);
                if (before is not null && before.Files.Count == files.Files.Count
                    && before.Files.Zip(files.Files).All(p => p.First.Path == p.Second.Path && p.First.Mode == p.Second.Mode && p.First.Content.AsSpan().SequenceEqual(p.Second.Content)))
                {
                    return dir;
                }

                Directory.CreateDirectory(dir);
                foreach (var file in files.Files)
                {
                    var path = Path.Combine(dir, file.Path);
                    if (before?.Files.FirstOrDefault(f => f.Path == file.Path) is { } old && old.Mode == file.Mode && old.Content.AsSpan().SequenceEqual(file.Content))
                    {
                        continue;
                    }

                    // Written beside and renamed over: a reader sees the old file or the new one, never half of one.
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    var temporary = path + ".new";
                    File.WriteAllBytes(temporary, file.Content);
                    File.SetUnixFileMode(temporary, (UnixFileMode)file.Mode);
                    if (fsGroup is { } owner)
                    {
                        _ = Chown(temporary, 0, (int)owner);
                    }

                    File.Move(temporary, path, overwrite: true);
                }

                var wanted = files.Files.Select(f => Path.GetFullPath(Path.Combine(dir, f.Path))).ToHashSet(StringComparer.Ordinal);
                foreach (var stale in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Where(f => !wanted.Contains(f)))
                {
                    File.Delete(stale);
                }

                _written[files.Name] = files;

                return dir;
            default:
                throw new InvalidOperationException(volume.GetType().Name);
        }
    }

    /// <summary>The pod's cluster DNS, rewritten in place (the bind mounts hold the file, so never replaced) when it changes.</summary>
    private void WriteHosts(V1Pod pod)
    {
        var hosts = HostsFile.Render(pod, _node.Services(), _node.Slices());
        if (hosts == _lastHosts)
        {
            return;
        }

        WriteInPlace(Path.Combine(_dir, "hosts"), hosts);
        File.SetUnixFileMode(Path.Combine(_dir, "hosts"), Mode("644"));
        _lastHosts = hosts;
    }

    /// <summary>The node's user database with the container's user and groups added when the node lacks them.</summary>
    private void WriteUserFiles(long uid, long gid, IEnumerable<long> groups)
    {
        // Once per pod from the node's files; later containers' users and groups are added to what is there.
        var passwd = File.ReadAllLines(_userFiles ? Path.Combine(_dir, "passwd") : "/etc/passwd").ToList();
        if (!passwd.Any(l => l.Split(':') is { Length: > 2 } f && f[2] == uid.ToString(CultureInfo.InvariantCulture)))
        {
            passwd.Add($"uid{uid}:x:{uid}:{gid}:pod user:/:/usr/sbin/nologin");
        }

        var group = File.ReadAllLines(_userFiles ? Path.Combine(_dir, "group") : "/etc/group").ToList();
        foreach (var g in groups.Prepend(gid).Distinct())
        {
            if (!group.Any(l => l.Split(':') is { Length: > 2 } f && f[2] == g.ToString(CultureInfo.InvariantCulture)))
            {
                group.Add($"gid{g}:x:{g}:");
            }
        }

        // Rewritten in place: a running container has them bound.
        WriteInPlace(Path.Combine(_dir, "passwd"), string.Join('\n', passwd) + "\n");
        WriteInPlace(Path.Combine(_dir, "group"), string.Join('\n', group) + "\n");
        File.SetUnixFileMode(Path.Combine(_dir, "passwd"), Mode("644"));
        File.SetUnixFileMode(Path.Combine(_dir, "group"), Mode("644"));
        _userFiles = true;
    }

    /// <summary>Replaces a file's content keeping the file (bind mounts hold the file itself, not its name).</summary>
    private static void WriteInPlace(string path, string content)
    {
        using var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write);
        stream.SetLength(0);
        stream.Write(Encoding.UTF8.GetBytes(content));
    }

    private static UnixFileMode Mode(string octal) => (UnixFileMode)Convert.ToInt32(octal, 8);

    /// <summary>
    /// A deleted pod's container logs outlive it, as the kubelet's under /var/log/pods do for a while: moved to
    /// <c>STATE/logs/NAMESPACE_NAME_UID</c>, for a look after a failed run (kube-down and e2e-kube remove the state).
    /// </summary>
    private void KeepLogs()
    {
        var logs = Path.Combine(_dir, "logs");
        if (!Directory.Exists(logs))
        {
            return;
        }

        try
        {
            var kept = Path.Combine(_node.Options.StateDirectory, "logs", $"{_key.Replace('/', '_')}_{_uid}");
            Directory.CreateDirectory(Path.GetDirectoryName(kept)!);
            Directory.Move(logs, kept);
        }
        catch (IOException e)
        {
            LogLogsNotKept(_logger, _key, e.Message);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
            // Left for kube-down.
        }
        catch (UnauthorizedAccessException)
        {
            // Left for kube-down.
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Chown(string path, int owner, int group);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Pod}: a round failed; trying again")]
    private static partial void LogRoundFailed(ILogger logger, string pod, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Pod}: the probe of {Container} could not run: {Error}")]
    private static partial void LogProbeFailed(ILogger logger, string pod, string container, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Pod}: started {Container} (pid {Pid}, restart {Restarts})")]
    private static partial void LogStarted(ILogger logger, string pod, string container, int pid, int restarts);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Pod}: {Container} exited with {Code}")]
    private static partial void LogExited(ILogger logger, string pod, string container, int code);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Pod}: a round failed ({Reason}); trying again")]
    private static partial void LogRoundRefused(ILogger logger, string pod, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Pod}: its logs are not kept: {Reason}")]
    private static partial void LogLogsNotKept(ILogger logger, string pod, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Pod}: {Signal} to {Container} (pid {Pid}): {Why}")]
    private static partial void LogSignal(ILogger logger, string pod, string container, string signal, int pid, string why);
}
