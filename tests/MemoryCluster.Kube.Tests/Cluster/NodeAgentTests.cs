using k8s.Models;
using MemoryCluster.Kube.Cluster.Controllers;
using MemoryCluster.Kube.Cluster.Node;
using MemoryCluster.Kube.Cluster.Proxy;
using MemoryCluster.Kube.Resources;
using MemoryCluster.Kube.TestServer;
using static MemoryCluster.Kube.Tests.Cluster.Objects;

namespace MemoryCluster.Kube.Tests.Cluster;

/// <summary>
/// The node agent running real processes for pods made through the API double: namespaces, volumes, environment,
/// probes, readiness as endpoints, graceful deletion. Runs as root (namespaces and bind mounts need it).
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class NodeAgentTests : IAsyncLifetime
{
    private readonly string _state = Directory.CreateTempSubdirectory("node-").FullName;
    private Harness _harness = null!;
    private CancellationTokenSource _stop = null!;
    private Task _run = Task.CompletedTask;

    public async Task InitializeAsync()
    {
        Assert.True(Environment.UserName == "root", "the node makes mount and PID namespaces for its pods: run the tests as root (CI does)");
        _harness = await Harness.StartAsync(new FakeApiServerOptions { ServiceNetwork = System.Net.IPNetwork.Parse("127.97.0.0/24") }, installCrd: false);
        _stop = new CancellationTokenSource();
        var node = new NodeAgent(_harness.Client, new NodeOptions
        {
            NodeName = "node-0",
            StateDirectory = _state,

            // Networks of its own: other test assemblies run their nodes at the same time.
            PodNetwork = System.Net.IPNetwork.Parse("127.11.0.0/16"),
            Timings = new NodeTimings(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1)),
        });
        _run = Task.WhenAll(new ControllerManager(_harness.Client).RunAsync(_stop.Token), node.RunAsync(_stop.Token), new ServiceProxy(_harness.Client).RunAsync(_stop.Token));
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run;
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        _stop.Dispose();
        await _harness.DisposeAsync();
        Directory.Delete(_state, recursive: true);
    }

    [Fact]
    public async Task A_pod_runs_as_a_process_with_its_volumes_environment_and_probes_and_ends_gracefully()
    {
        var client = _harness.Client;
        await client.CreateAsync(ResourceTypes.ConfigMap, new V1ConfigMap
        {
            Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "default" },
            Data = new Dictionary<string, string> { ["hello.txt"] = "hello from a configmap\n" },
        }, CancellationToken.None);
        await client.CreateAsync(ResourceTypes.Secret, new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "default" },
            StringData = new Dictionary<string, string> { ["greeting"] = "hi" },
        }, CancellationToken.None);
        await client.CreateAsync(ResourceTypes.Service, new V1Service
        {
            Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "default" },
            Spec = new V1ServiceSpec { Selector = Labels("app=web"), Ports = [new V1ServicePort { Name = "http", Port = 80, TargetPort = "http" }] },
        }, CancellationToken.None);
        await client.CreateAsync(ResourceTypes.Pod, WebPod(), CancellationToken.None);

        var pod = await UntilAsync(() => client.GetAsync(ResourceTypes.Pod, "default", "web-0", CancellationToken.None),
            p => p.Status?.Conditions?.Any(c => c is { Type: "Ready", Status: "True" }) == true, "web-0 ready");
        Assert.Equal("node-0", pod.Spec.NodeName);
        Assert.StartsWith("127.11.", pod.Status.PodIP, StringComparison.Ordinal);
        Assert.True(pod.Status.ContainerStatuses.Single() is { Ready: true, Started: true, RestartCount: 0 });

        // The configmap's file, served by the process on the pod's own address.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        Assert.Equal("hello from a configmap\n", await http.GetStringAsync(new Uri($"http://{pod.Status.PodIP}:8080/hello.txt")));

        // What the process saw, left in its emptyDir: the secret's value, its hostname, its user, its own PID namespace
        // (the shell is its first process; "$$$$" is the shell's "$$" after Kubernetes' own "$$" escape), its own
        // address, and the Service's address by name (cluster DNS).
        var seen = await File.ReadAllTextAsync(Path.Combine(_state, "pods", pod.Metadata.Uid, "volumes", "scratch", "seen"));
        var service = await client.GetAsync(ResourceTypes.Service, "default", "web", CancellationToken.None);
        Assert.Equal($"hi web-0 26 1 {pod.Status.PodIP} {service.Spec.ClusterIP}", seen.Trim());

        var slice = await UntilAsync(async () => (await client.ListAsync(ClusterTypes.EndpointSlice, "default", null, CancellationToken.None)).Items.SingleOrDefault(),
            s => s?.Endpoints?.SingleOrDefault()?.Conditions.Ready == true, "the Service's endpoint ready");
        Assert.Equal(pod.Status.PodIP, slice!.Endpoints.Single().Addresses.Single());
        Assert.Equal(8080, slice.Ports.Single().Port);

        // Through the Service's address: the proxy forwards to the ready endpoint.
        Assert.Equal("hello from a configmap\n", await UntilAsync(async () =>
        {
            try
            {
                return await http.GetStringAsync(new Uri($"http://{service.Spec.ClusterIP}:80/hello.txt"));
            }
            catch (HttpRequestException)
            {
                return "";
            }
        }, body => body.Length > 0, "the Service answering"));

        // Deleted: marked terminating, SIGTERM (the shell, the container's first process, stops the server), then removed.
        var terminating = await client.DeleteAsync(ResourceTypes.Pod, "default", "web-0", null, CancellationToken.None);
        Assert.True(terminating?.Metadata.DeletionTimestamp is not null, "a running pod is not removed at once");
        await UntilAsync(async () => (await client.ListAsync(ResourceTypes.Pod, "default", null, CancellationToken.None)).Items.Count, n => n == 0, "web-0 removed");
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetStringAsync(new Uri($"http://{pod.Status.PodIP}:8080/hello.txt")));
    }

    [Fact]
    public async Task A_container_that_exits_is_restarted_with_back_off_and_counted()
    {
        var client = _harness.Client;
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "crash", NamespaceProperty = "default" },
            Spec = new V1PodSpec
            {
                Containers = [new V1Container { Name = "main", Image = "none", Command = ["sh", "-c", "sleep 0.2; exit 3"] }],
            },
        };
        await client.CreateAsync(ResourceTypes.Pod, pod, CancellationToken.None);
        var seen = await UntilAsync(() => client.GetAsync(ResourceTypes.Pod, "default", "crash", CancellationToken.None),
            p => p.Status?.ContainerStatuses?.SingleOrDefault()?.RestartCount >= 2, "two restarts");
        var status = seen.Status.ContainerStatuses.Single();
        Assert.Equal(3, status.LastState.Terminated.ExitCode);
        Assert.True(status.State.Running is not null || status.State.Waiting?.Reason == "CrashLoopBackOff", k8s.KubernetesJson.Serialize(status.State));
        Assert.Equal("Running", seen.Status.Phase);
    }

    private static V1Pod WebPod() => new()
    {
        Metadata = new V1ObjectMeta { Name = "web-0", NamespaceProperty = "default", Labels = Labels("app=web") },
        Spec = new V1PodSpec
        {
            SecurityContext = new V1PodSecurityContext { RunAsUser = 26, RunAsGroup = 26, FsGroup = 26 },
            TerminationGracePeriodSeconds = 10,
            AutomountServiceAccountToken = false,
            Containers =
            [
                new V1Container
                {
                    Name = "web",
                    Image = "python",
                    Command = ["sh", "-c", """echo "$GREETING $(hostname) $(id -u) $$$$ $POD_IP $(getent hosts web.default.svc | cut -d' ' -f1)" > /scratch/seen && cd /etc/web && python3 -m http.server 8080 --bind "$POD_IP" & trap "kill $!; exit 0" TERM; wait"""],
                    Env =
                    [
                        new V1EnvVar { Name = "POD_IP", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "status.podIP" } } },
                        new V1EnvVar { Name = "GREETING", ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = "web", Key = "greeting" } } },
                    ],
                    Ports = [new V1ContainerPort { Name = "http", ContainerPort = 8080 }],
                    ReadinessProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Path = "/hello.txt", Port = "http" }, PeriodSeconds = 1 },
                    VolumeMounts =
                    [
                        new V1VolumeMount { Name = "config", MountPath = "/etc/web" },
                        new V1VolumeMount { Name = "scratch", MountPath = "/scratch" },
                    ],
                },
            ],
            Volumes =
            [
                new V1Volume { Name = "config", ConfigMap = new V1ConfigMapVolumeSource { Name = "web" } },
                new V1Volume { Name = "scratch", EmptyDir = new V1EmptyDirVolumeSource() },
            ],
        },
    };

    private static Task<T> UntilAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what) => Objects.UntilAsync(read, done, what, seconds: 60);
}
