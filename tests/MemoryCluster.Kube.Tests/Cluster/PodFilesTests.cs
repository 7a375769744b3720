using System.Text;
using k8s.Models;
using MemoryCluster.Kube.Cluster.Node;
using static MemoryCluster.Kube.Tests.Cluster.Objects;

namespace MemoryCluster.Kube.Tests.Cluster;

/// <summary>What the node makes for a pod before it starts anything: environment, volumes, hosts file, launch.</summary>
public class PodFilesTests
{
    private static readonly PodInputs Inputs = new(
        new Dictionary<string, V1Secret> { ["app"] = new() { Data = new Dictionary<string, byte[]> { ["password"] = Encoding.UTF8.GetBytes("s3cret") } } },
        new Dictionary<string, V1ConfigMap> { ["conf"] = new() { Data = new Dictionary<string, string> { ["mode"] = "quorum", ["a.conf"] = "x = 1\n" } } },
        [new("KUBERNETES_SERVICE_HOST", "127.0.0.1"), new("KUBERNETES_SERVICE_PORT", "6443")]);

    [Fact]
    public void The_environment_has_values_fields_secrets_configmaps_and_references_in_order()
    {
        var pod = Pod();
        var container = new V1Container
        {
            Name = "main",
            EnvFrom = [new V1EnvFromSource { ConfigMapRef = new V1ConfigMapEnvSource { Name = "conf" }, Prefix = "CONF_" }],
            Env =
            [
                new V1EnvVar { Name = "POD", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.name" } } },
                new V1EnvVar { Name = "IP", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "status.podIP" } } },
                new V1EnvVar { Name = "ROLE", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "metadata.labels['role']" } } },
                new V1EnvVar { Name = "PASSWORD", ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = "app", Key = "password" } } },
                new V1EnvVar { Name = "MODE", ValueFrom = new V1EnvVarSource { ConfigMapKeyRef = new V1ConfigMapKeySelector { Name = "conf", Key = "mode" } } },
                new V1EnvVar { Name = "URL", Value = "postgres://$(POD):$(PASSWORD)@$(IP)/$(UNKNOWN)$$(POD)" },
                new V1EnvVar { Name = "POD", Value = "replaced" },
            ],
        };
        var environment = PodEnvironment.Resolve(pod, container, Inputs);

        Assert.Null(environment.Error);
        Assert.Equal(
            ["KUBERNETES_SERVICE_HOST=127.0.0.1", "KUBERNETES_SERVICE_PORT=6443", "HOSTNAME=demo-0", "CONF_mode=quorum", "CONF_a.conf=x = 1\n", "IP=127.10.0.7",
             "ROLE=primary", "PASSWORD=s3cret", "MODE=quorum", "URL=postgres://demo-0:s3cret@127.10.0.7/$(UNKNOWN)$(POD)", "POD=replaced"],
            environment.Variables.Select(v => v.Key + "=" + v.Value));
    }

    [Theory]
    [InlineData("missing", "password", false, "secret \"missing\" not found")]
    [InlineData("app", "nope", false, "couldn't find key nope in Secret default/app")]
    [InlineData("missing", "password", true, null)]
    public void A_missing_secret_or_key_is_an_error_naming_it_unless_optional(string secret, string key, bool optional, string? error)
    {
        var container = new V1Container
        {
            Name = "main",
            Env = [new V1EnvVar { Name = "X", ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = secret, Key = key, Optional = optional } } }],
        };
        Assert.Equal(error, PodEnvironment.Resolve(Pod(), container, Inputs).Error);
    }

    [Fact]
    public void Volumes_become_files_folders_and_claims_with_modes_for_the_fs_group()
    {
        var pod = Pod();
        pod.Spec.SecurityContext = new V1PodSecurityContext { FsGroup = 26 };
        pod.Spec.Volumes =
        [
            new V1Volume { Name = "secret", Secret = new V1SecretVolumeSource { SecretName = "app", DefaultMode = Convert.ToInt32("400", 8) } },
            new V1Volume { Name = "conf", ConfigMap = new V1ConfigMapVolumeSource { Name = "conf", Items = [new V1KeyToPath { Key = "a.conf", Path = "etc/a.conf" }] } },
            new V1Volume { Name = "scratch", EmptyDir = new V1EmptyDirVolumeSource() },
            new V1Volume { Name = "data", PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = "data-demo-0" } },
        ];
        var (volumes, error) = PodVolumes.Plan(pod, Inputs, new Dictionary<string, string> { ["data-demo-0"] = "/node/claims/data" });

        Assert.Null(error);
        var secret = Assert.IsType<FilesVolume>(volumes[0]).Files.Single();
        Assert.Equal(("password", "s3cret", "440"), (secret.Path, Encoding.UTF8.GetString(secret.Content), Convert.ToString(secret.Mode, 8)));
        var conf = Assert.IsType<FilesVolume>(volumes[1]).Files.Single();
        Assert.Equal(("etc/a.conf", "644"), (conf.Path, Convert.ToString(conf.Mode, 8)));
        Assert.IsType<EmptyVolume>(volumes[2]);
        Assert.Equal("/node/claims/data", Assert.IsType<FolderVolume>(volumes[3]).Folder);

        Assert.Equal("persistentvolumeclaim \"data-demo-0\" not found or not bound", PodVolumes.Plan(pod, Inputs, new Dictionary<string, string>()).Error);
        pod.Spec.Volumes[0].Secret.SecretName = "gone";
        Assert.Equal("MountVolume.SetUp failed for volume \"secret\" : secret \"gone\" not found", PodVolumes.Plan(pod, Inputs, new Dictionary<string, string>()).Error);
    }

    [Fact]
    public void The_hosts_file_names_the_pod_every_service_and_pods_under_headless_services()
    {
        var pod = Pod();
        var services = new[]
        {
            new V1Service { Metadata = new V1ObjectMeta { Name = "demo-rw", NamespaceProperty = "default" }, Spec = new V1ServiceSpec { ClusterIP = "127.96.0.1" } },
            new V1Service { Metadata = new V1ObjectMeta { Name = "api", NamespaceProperty = "other" }, Spec = new V1ServiceSpec { ClusterIP = "127.96.0.2" } },
            new V1Service { Metadata = new V1ObjectMeta { Name = "demo-hl", NamespaceProperty = "default" }, Spec = new V1ServiceSpec { ClusterIP = "None" } },
        };
        var slice = new V1EndpointSlice
        {
            Metadata = new V1ObjectMeta { Name = "demo-hl-x", NamespaceProperty = "default", Labels = Labels("kubernetes.io/service-name=demo-hl") },
            Endpoints =
            [
                new V1Endpoint { Addresses = ["127.10.0.8"], Hostname = "demo-1" },
                new V1Endpoint { Addresses = ["127.10.0.7"], Hostname = "demo-0" },
            ],
        };
        var hosts = HostsFile.Render(pod, services, [slice]).Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')).ToList();

        Assert.Equal(
        [
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "127.10.0.7\tdemo-0.demo-hl.default.svc.cluster.local demo-0.demo-hl.default.svc demo-0.demo-hl.default demo-0.demo-hl demo-0",
            "127.96.0.1\tdemo-rw.default.svc.cluster.local demo-rw.default.svc demo-rw.default demo-rw",
            "127.96.0.2\tapi.other.svc.cluster.local api.other.svc api.other",
            "127.10.0.8\tdemo-1.demo-hl.default.svc.cluster.local demo-1.demo-hl.default.svc demo-1.demo-hl.default demo-1.demo-hl",
        ], hosts);
    }

    [Fact]
    public void A_launch_runs_as_the_containers_user_with_its_mounts_and_overlays_for_missing_folders()
    {
        var pod = Pod();
        pod.Spec.SecurityContext = new V1PodSecurityContext { RunAsUser = 26, RunAsGroup = 26, FsGroup = 26, SupplementalGroups = [5] };
        pod.Spec.Volumes = [new V1Volume { Name = "conf", ConfigMap = new V1ConfigMapVolumeSource { Name = "conf" } }, new V1Volume { Name = "data", EmptyDir = new V1EmptyDirVolumeSource() }];
        var container = new V1Container
        {
            Name = "main",
            Command = ["memorycluster", "instance"],
            Args = ["--config", "$(CONF)/instance.conf"],
            SecurityContext = new V1SecurityContext { RunAsUser = 1000 },
            VolumeMounts =
            [
                new V1VolumeMount { Name = "conf", MountPath = "/etc/memorycluster/config" },
                new V1VolumeMount { Name = "data", MountPath = "/var/lib/memorycluster" },
            ],
        };
        var files = new PodFiles("/node/pods/uid", new Dictionary<string, string> { ["conf"] = "/node/pods/uid/volumes/conf", ["data"] = "/node/pods/uid/volumes/data" });
        var existing = new HashSet<string> { "/etc", "/etc/hosts", "/etc/passwd", "/etc/group", "/var", "/var/lib", "/opt", "/node/pods/uid/volumes/conf/", "/node/pods/uid/volumes/data/", "/node/pods/uid/volumes/conf", "/node/pods/uid/volumes/data" };
        var spec = LaunchPlanner.Plan(pod, container, [new("CONF", "/etc/memorycluster/config")], files, ["/opt/bin"], existing.Contains);

        Assert.Equal((1000L, 26L, "26,5"), (spec.Uid, spec.Gid, string.Join(",", spec.Groups)));
        Assert.Equal(["/etc", "/opt", "/var/lib"], spec.Overlays.Select(o => o.Folder));
        Assert.Equal(["/etc/memorycluster/config ro", "/var/lib/memorycluster rw", "/opt/one-machine-node/bin/0 ro", "/etc/hosts ro file", "/etc/passwd ro file", "/etc/group ro file"],
            spec.Mounts.Select(m => $"{m.Target} {(m.ReadOnly ? "ro" : "rw")}{(m.IsFile ? " file" : "")}"));
        Assert.Equal(["memorycluster", "instance", "--config", "/etc/memorycluster/config/instance.conf"], spec.Command);
        Assert.Equal("PATH=/opt/one-machine-node/bin/0:" + LaunchPlanner.SystemPath, spec.Environment[0].Key + "=" + spec.Environment[0].Value);

        // Every value reaches the shell as one word, whatever it holds.
        var script = LaunchScript.Render(spec with { Command = ["sh", "-c", "echo 'it''s' $HOME"] });
        Assert.Contains("""'sh' '-c' 'echo '\''it'\'''\''s'\'' $HOME'""", script, StringComparison.Ordinal);
        Assert.Contains("exec setpriv --reuid=1000 --regid=26 --groups=26,5 --inh-caps=-all --bounding-set=-all -- env -i", script, StringComparison.Ordinal);

        // A file bound where its folder is missing: the folder is made first.
        var file = LaunchScript.Render(spec with { Mounts = [new Mount("/node/app.conf", "/etc/app/app.conf", true, true)] });
        Assert.Contains("mkdir -p '/etc/app'\n[ -e '/etc/app/app.conf' ] || touch '/etc/app/app.conf'\nmount --bind '/node/app.conf' '/etc/app/app.conf'", file, StringComparison.Ordinal);
    }

    [Fact]
    public void A_mount_that_would_hide_another_ones_source_is_bound_after_it()
    {
        // The node keeps its files under /tmp; the container mounts an emptyDir at /tmp.
        var mounts = new List<Mount>
        {
            new("/tmp/node/pods/uid/volumes/tmp", "/tmp", false),
            new("/tmp/node/pods/uid/volumes/data", "/var/lib/app/data", false),
            new("/tmp/node/pods/uid/volumes/app", "/var/lib/app", false),
            new("/tmp/node/pods/uid/hosts", "/etc/hosts", true, true),
        };
        Assert.Equal(["/var/lib/app", "/var/lib/app/data", "/etc/hosts", "/tmp"], LaunchPlanner.Order(mounts).Select(m => m.Target));
    }

    private static V1Pod Pod() => new()
    {
        Metadata = new V1ObjectMeta { Name = "demo-0", NamespaceProperty = "default", Uid = "uid", Labels = Labels("role=primary") },
        Spec = new V1PodSpec { Hostname = "demo-0", Subdomain = "demo-hl", Containers = [new V1Container { Name = "main" }] },
        Status = new V1PodStatus { PodIP = "127.10.0.7" },
    };
}
