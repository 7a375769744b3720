using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;

namespace MemoryCluster.Kube.Tests.ApiServer;

/// <summary>
/// Keeps the double honest: the real kubectl talks to it through a generated kubeconfig. Run alone with
/// <c>dotnet test --filter Category=Kubectl</c>.
/// </summary>
[Trait("Category", "Kubectl")]
[Trait("Category", "Integration")]
public sealed class KubectlTests : IAsyncLifetime
{
    private const string ReaderToken = "reader-token-0123456789";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    private readonly string _home = Directory.CreateTempSubdirectory("memorycluster-kubectl-").FullName;
    private readonly List<Process> _processes = [];
    private Harness _harness = null!;
    private X509Certificate2? _ca;
    private X509Certificate2? _serverCertificate;

    public async Task InitializeAsync()
    {
        // Over TLS, as kubectl sends a bearer token only there. Requests with the reader's token are decided by RBAC;
        // kubectl's own (no token) are a cluster admin's.
        var ca = _ca = TestCertificates.CreateCa("kubectl-test-ca");
        _serverCertificate = TestCertificates.Issue(ca, "127.0.0.1", server: true);
        _harness = await Harness.StartAsync(
            new FakeApiServerOptions { ServerCertificate = _serverCertificate, Users = new Dictionary<string, RbacUser> { [ReaderToken] = RbacUser.ServiceAccount("default", "reader") } },
            installCrd: false,
            trust: ca);
        // Any other token (this one included) is an admin's: over TLS with no credential kubectl asks for a password.
        await File.WriteAllTextAsync(Path.Combine(_home, "kubeconfig"), _harness.Server.KubeconfigYaml("admin-token-0123456789", certificateAuthorityPem: ca.ExportCertificatePem()));
    }

    public async Task DisposeAsync()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }

        await _harness.DisposeAsync();
        _serverCertificate?.Dispose();
        _ca?.Dispose();
        Directory.Delete(_home, recursive: true);
    }

    [Fact]
    public async Task Kubectl_applies_gets_patches_watches_waits_for_and_deletes_a_MemoryCluster()
    {
        var crd = await KubectlAsync("apply", "-f", Repo.CrdPath);
        Assert.Contains("customresourcedefinition.apiextensions.k8s.io/memoryclusters.memorycluster.io created", crd);

        var samples = Path.Combine(Repo.Root, "crds", "samples");
        var applied = await KubectlAsync("apply", "-f", Path.Combine(samples, "minimal.yaml"));
        Assert.Contains("memorycluster.memorycluster.io/demo created", applied);

        // The printer columns of the CRD, as kubectl lays them out from the server's Table.
        var table = Lines(await KubectlAsync("get", "mc", "demo"));
        Assert.Equal(["NAME", "INSTANCES", "READY", "PRIMARY", "EPOCH", "PHASE", "AGE"], Words(table[0]));
        Assert.Equal(["demo", "3"], Words(table[1])[..2]);
        Assert.Matches("^[0-9]+s$", Words(table[1])[^1]);

        // Defaults from the CRD schema are applied by the server on create.
        Assert.Equal("async", (await KubectlAsync("get", "mc", "demo", "-o", "jsonpath={.spec.replication.mode}")).Trim());

        var patched = await KubectlAsync("patch", "mc", "demo", "--type", "merge", "-p", """{"spec":{"instances":5}}""");
        Assert.Contains("memorycluster.memorycluster.io/demo patched", patched);
        Assert.Equal("2 5", (await KubectlAsync("get", "mc", "demo", "-o", "jsonpath={.metadata.generation} {.spec.instances}")).Trim());

        // A strategic merge patch does not work on a custom resource (kubectl refuses it before sending).
        var strategic = await KubectlAsync(expectFailure: true, "patch", "mc", "demo", "-p", """{"spec":{"instances":3}}""");
        Assert.Contains("strategic-merge-patch+json", strategic);

        var watch = Start("get", "mc", "demo", "-w");
        await Eventually.TrueAsync(() => watch.Lines.Any(l => l.StartsWith("demo", StringComparison.Ordinal)), "kubectl get -w to list demo", 30_000);
        var wait = Start("wait", "--for=condition=Ready", "mc/demo", "--timeout=50s");
        await Eventually.TrueAsync(() => _harness.Server.RequestCount("WATCH memoryclusters") >= 2, "kubectl wait to watch", 30_000);

        // Ready=True, but computed from an older generation: kubectl wait must keep waiting.
        var current = await _harness.Client.GetAsync(ResourceTypes.MemoryCluster, "default", "demo", CancellationToken.None);
        var generation = current.Metadata.Generation!.Value;
        current = await _harness.Client.ReplaceStatusAsync(ResourceTypes.MemoryCluster, WithStatus(current, generation - 1, ready: true), CancellationToken.None);
        await Task.Delay(1500);
        Assert.False(wait.Process.HasExited, "kubectl wait returned although the Ready condition is for an old generation: " + wait.Output);

        await _harness.Client.ReplaceStatusAsync(ResourceTypes.MemoryCluster, WithStatus(current, generation, ready: true), CancellationToken.None);
        Assert.Equal(0, await wait.ExitAsync());
        Assert.Contains("memorycluster.memorycluster.io/demo condition met", wait.Output);
        await Eventually.TrueAsync(() => watch.Lines.Any(l => Words(l) is ["demo", "5", "3", "demo-1", "7", "Healthy", _]),
            "kubectl get -w to show the new status: " + string.Join(" | ", watch.Lines), 30_000);

        // Status writes did not touch the spec or bump the generation.
        Assert.Equal($"{generation} 5", (await KubectlAsync("get", "mc", "demo", "-o", "jsonpath={.metadata.generation} {.spec.instances}")).Trim());
        var row = Words(Lines(await KubectlAsync("get", "mc"))[1]);
        Assert.Equal(["demo", "5", "3", "demo-1", "7", "Healthy"], row[..6]);

        var deleted = await KubectlAsync("delete", "mc", "demo");
        Assert.Contains("memorycluster.memorycluster.io \"demo\" deleted", deleted);
        Assert.Contains("No resources found", await KubectlAsync("get", "mc", "--ignore-not-found=false"));
    }

    [Fact]
    public async Task Kubectl_applies_every_sample_and_lists_them_across_namespaces()
    {
        await KubectlAsync("apply", "-f", Repo.CrdPath);
        var applied = await KubectlAsync("apply", "-f", Path.Combine(Repo.Root, "crds", "samples"));
        var names = Directory.GetFiles(Path.Combine(Repo.Root, "crds", "samples"), "*.yaml").Length;
        Assert.Equal(names, Lines(applied).Count(l => l.EndsWith(" created", StringComparison.Ordinal)));
        var rows = Lines(await KubectlAsync("get", "mc", "-A"));
        Assert.Equal(["NAMESPACE", "NAME", "INSTANCES", "READY", "PRIMARY", "EPOCH", "PHASE", "AGE"], Words(rows[0]));
        Assert.Equal(names, rows.Length - 1);

        // Applying the same files again changes nothing.
        var again = await KubectlAsync("apply", "-f", Path.Combine(Repo.Root, "crds", "samples"));
        Assert.All(Lines(again), l => Assert.EndsWith(" unchanged", l, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Kubectl_as_a_service_account_may_do_what_its_bindings_grant_and_is_told_forbidden_otherwise()
    {
        var rbac = Path.Combine(_home, "rbac.yaml");
        await File.WriteAllTextAsync(rbac, """
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRole
            metadata: {name: pod-reader}
            rules:
              - {apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"]}
              - {apiGroups: ["rbac.authorization.k8s.io"], resources: ["roles"], verbs: ["create"]}
              - {apiGroups: [""], resources: ["configmaps"], verbs: ["get", "patch"]}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {name: reader, namespace: default}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
            subjects: [{kind: ServiceAccount, name: reader, namespace: default}]
            """);
        await KubectlAsync("apply", "-f", Repo.CrdPath);
        var applied = await KubectlAsync("apply", "-f", rbac);
        Assert.Contains("clusterrole.rbac.authorization.k8s.io/pod-reader created", applied);
        Assert.Contains("rolebinding.rbac.authorization.k8s.io/reader created", applied);

        Assert.Contains("No resources found in default namespace.", await KubectlAsync("--token", ReaderToken, "get", "pods"));
        var elsewhere = await KubectlAsync(expectFailure: true, "--token", ReaderToken, "get", "pods", "-n", "kube-system");
        Assert.Contains(
            "Error from server (Forbidden): pods is forbidden: User \"system:serviceaccount:default:reader\" cannot list resource \"pods\" in API group \"\" in the namespace \"kube-system\"",
            elsewhere);
        var create = await KubectlAsync(expectFailure: true, "--token", ReaderToken, "apply", "-f", Path.Combine(Repo.Root, "crds", "samples", "minimal.yaml"));
        Assert.Contains("memoryclusters.memorycluster.io \"demo\" is forbidden: User \"system:serviceaccount:default:reader\" cannot get resource \"memoryclusters\" in API group \"memorycluster.io\" in the namespace \"default\"", create);

        Assert.Contains(
            "namespaces \"default\" is forbidden: User \"system:serviceaccount:default:reader\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"default\"",
            await KubectlAsync(expectFailure: true, "--token", ReaderToken, "get", "namespace", "default"));

        // A server-side apply that would create an object is also a create, which it may not.
        var settings = Path.Combine(_home, "settings.yaml");
        await File.WriteAllTextAsync(settings, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {a: b}\n");
        var applyCreate = await KubectlAsync(expectFailure: true, "--token", ReaderToken, "apply", "--server-side", "-f", settings);
        Assert.Contains("configmaps \"settings\" is forbidden: User \"system:serviceaccount:default:reader\" cannot create resource \"configmaps\"", applyCreate);

        // It may create Roles, but none granting more than it holds (the real server's escalation check). From files:
        // `kubectl create role` sends protobuf, which the double does not speak.
        string Role(string name, string verb)
        {
            var file = Path.Combine(_home, name + ".yaml");
            File.WriteAllText(file, $$"""
                apiVersion: rbac.authorization.k8s.io/v1
                kind: Role
                metadata: {name: {{name}}, namespace: default}
                rules: [{apiGroups: [""], resources: ["pods"], verbs: ["{{verb}}"]}]
                """);
            return file;
        }

        Assert.Contains("role.rbac.authorization.k8s.io/viewer created", await KubectlAsync("--token", ReaderToken, "create", "-f", Role("viewer", "get")));
        var escalation = await KubectlAsync(expectFailure: true, "--token", ReaderToken, "create", "-f", Role("killer", "delete"));
        Assert.Contains("is attempting to grant RBAC permissions not currently held", escalation);
        Assert.Contains("NotFound", await KubectlAsync(expectFailure: true, "get", "role", "killer"));
        Assert.Contains("No resources found", await KubectlAsync("get", "mc"));
    }

    private static MemoryClusterResource WithStatus(MemoryClusterResource cluster, long observedGeneration, bool ready) => cluster with
    {
        Status = new MemoryClusterStatus
        {
            Phase = Phases.Healthy,
            ReadyInstances = 3,
            CurrentPrimary = "demo-1",
            Epoch = 7,
            ObservedGeneration = observedGeneration,
            Conditions =
            [
                new Condition
                {
                    Type = ConditionTypes.Ready,
                    Status = ready ? ConditionStatus.True : ConditionStatus.False,
                    ObservedGeneration = observedGeneration,
                    LastTransitionTime = DateTimeOffset.UtcNow,
                    Reason = ConditionReasons.AllInstancesReady,
                    Message = "all instances are ready",
                },
            ],
        },
    };

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string[] Words(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private Task<string> KubectlAsync(params string[] args) => KubectlAsync(false, args);

    private async Task<string> KubectlAsync(bool expectFailure, params string[] args)
    {
        var run = Start(args);
        var code = await run.ExitAsync();
        if (expectFailure)
        {
            Assert.NotEqual(0, code);
        }
        else
        {
            Assert.True(code == 0, $"kubectl {string.Join(' ', args)} exited with {code}: {run.Output}");
        }

        return run.Output;
    }

    private Run Start(params string[] args)
    {
        var start = new ProcessStartInfo("kubectl")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["KUBECONFIG"] = Path.Combine(_home, "kubeconfig");
        start.Environment["HOME"] = _home;
        var process = Process.Start(start)!;
        _processes.Add(process);
        var run = new Run(process);
        process.OutputDataReceived += (_, e) => run.Add(e.Data);
        process.ErrorDataReceived += (_, e) => run.Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return run;
    }

    private sealed class Run(Process process)
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public Process Process => process;

        public IReadOnlyList<string> Lines => [.. _lines];

        public string Output => string.Join('\n', _lines);

        public void Add(string? line)
        {
            if (line is not null)
            {
                _lines.Enqueue(line);
            }
        }

        public async Task<int> ExitAsync()
        {
            using var timeout = new CancellationTokenSource(CommandTimeout);
            await process.WaitForExitAsync(timeout.Token);
            process.WaitForExit();
            return process.ExitCode;
        }
    }
}
