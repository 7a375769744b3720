using k8s;
using k8s.Models;
using MemoryCluster.Api;
using MemoryCluster.Api.Meta;
using MemoryCluster.Instance;
using MemoryCluster.Instance.Control;
using MemoryCluster.Operator.Planning;

namespace MemoryCluster.Operator.Tests.Planning;

public sealed class ObjectPlannerTests
{
    private static MemoryClusterResource Cluster(int instances = 3, string name = "demo", string? uid = "6f1c0a4e-0000-4000-8000-000000000001") => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = "memory", Uid = uid },
        Spec = new MemoryClusterSpec { Instances = instances },
    };

    private static T One<T>(DesiredObjects desired, string name)
        where T : IKubernetesObject<V1ObjectMeta> =>
        Assert.Single(desired.Objects.OfType<T>(), o => o.Metadata.Name == name);

    [Fact]
    public void With_bind_pod_ip_every_process_is_told_its_pod_ip_to_listen_on_and_without_nothing_changes()
    {
        static string? PodIpVariable(V1Container container) =>
            container.Env.SingleOrDefault(e => e.ValueFrom?.FieldRef?.FieldPath == "status.podIP")?.Name;

        var bound = ObjectPlanner.Render(Cluster(), OperatorSettings.Default with { BindPodIp = true });
        Assert.Equal("MEMORYCLUSTER_LISTEN_ADDRESS", PodIpVariable(One<V1StatefulSet>(bound, "demo").Spec.Template.Spec.Containers.Single()));
        Assert.Equal("MEMORYCLUSTER_COMPUTE_HOST", PodIpVariable(One<V1Deployment>(bound, "demo-compute").Spec.Template.Spec.Containers.Single()));
        Assert.Equal("listen-address", InstanceOptionsParser.Keys.Single(k => InstanceOptionsParser.EnvironmentName(k) == "MEMORYCLUSTER_LISTEN_ADDRESS"));

        var plain = ObjectPlanner.Render(Cluster(), OperatorSettings.Default);
        Assert.Null(PodIpVariable(One<V1StatefulSet>(plain, "demo").Spec.Template.Spec.Containers.Single()));
        Assert.Null(PodIpVariable(One<V1Deployment>(plain, "demo-compute").Spec.Template.Spec.Containers.Single()));
    }

    [Fact]
    public void An_instance_image_in_the_spec_wins_and_without_one_the_operators_default_of_its_own_version_is_used()
    {
        static string Image(DesiredObjects desired) => One<V1StatefulSet>(desired, "demo").Spec.Template.Spec.Containers.Single().Image;

        var settings = OperatorSettings.Default with { InstanceImage = "registry.example/memorycluster-instance:9.9.9" };
        Assert.Equal("registry.example/memorycluster-instance:9.9.9", Image(ObjectPlanner.Render(Cluster(), settings)));
        var named = Cluster() with { Spec = new MemoryClusterSpec { Postgres = new PostgresSpec { Image = "mine/postgres:15" } } };
        Assert.Equal("mine/postgres:15", Image(ObjectPlanner.Render(named, settings)));

        // The default images carry the product's version (Directory.Build.props, as the assembly's), which make images tags.
        var version = typeof(OperatorSettings).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().Single().InformationalVersion.Split('+')[0];
        Assert.Equal(OperatorSettings.ImageVersion, version);
        Assert.EndsWith(":" + version, Image(ObjectPlanner.Render(Cluster(), OperatorSettings.Default)), StringComparison.Ordinal);
        Assert.EndsWith(":" + version, OperatorSettings.Default.ComputeImage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void Every_object_the_design_names_is_rendered_in_the_clusters_namespace_with_an_owner_reference(int instances)
    {
        var desired = ObjectPlanner.Render(Cluster(instances), OperatorSettings.Default);

        var kinds = desired.Objects.Select(o => $"{o.Kind}/{o.Metadata.Name}").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(
            [
                "ConfigMap/demo-config", "Deployment/demo-compute", "PodDisruptionBudget/demo", "Role/demo-instance",
                "RoleBinding/demo-instance", "Service/demo-compute", "Service/demo-hl", "Service/demo-r", "Service/demo-ro",
                "Service/demo-rw", "ServiceAccount/demo-instance", "StatefulSet/demo",
            ],
            kinds);
        Assert.Equal(["demo-superuser", "demo-replication", "demo-app", "demo-cluster-key", "demo-compute-token"], desired.Secrets.Select(s => s.Name));
        foreach (var obj in desired.Objects)
        {
            Assert.Equal("memory", obj.Metadata.NamespaceProperty);
            var owner = Assert.Single(obj.Metadata.OwnerReferences);
            Assert.Equal((ApiGroup.ApiVersion, ApiGroup.Kind, "demo", "6f1c0a4e-0000-4000-8000-000000000001", true),
                (owner.ApiVersion, owner.Kind, owner.Name, owner.Uid, owner.Controller ?? false));
            Assert.False(string.IsNullOrEmpty(obj.ApiVersion));
        }

        Assert.Equal(instances, One<V1StatefulSet>(desired, "demo").Spec.Replicas);
    }

    [Fact]
    public void Without_a_uid_the_render_carries_no_owner_reference()
    {
        var desired = ObjectPlanner.Render(Cluster(uid: null), OperatorSettings.Default);
        Assert.All(desired.Objects, o => Assert.Null(o.Metadata.OwnerReferences));
    }

    [Fact]
    public void Rendering_is_deterministic_field_for_field()
    {
        string Json() => string.Join("\n", ObjectPlanner.Render(Cluster(5), OperatorSettings.Default).Objects.Select(o => KubernetesJson.Serialize(o)));
        Assert.Equal(Json(), Json());
    }

    [Fact]
    public void Secrets_name_their_generated_keys_and_carry_no_value_but_the_user_name()
    {
        var desired = ObjectPlanner.Render(Cluster(), OperatorSettings.Default);
        foreach (var secret in desired.Secrets)
        {
            Assert.NotEmpty(secret.Generated);
            Assert.All(secret.Generated.Values, bytes => Assert.True(bytes >= 24, $"{secret.Name}: {bytes} random bytes"));
            Assert.All(secret.Fixed.Keys, k => Assert.Equal("username", k));
        }

        Assert.Equal(32, desired.Secrets.Single(s => s.Name == "demo-cluster-key").Generated["key"]);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void Every_selector_matches_the_pods_it_means(int instances)
    {
        var desired = ObjectPlanner.Render(Cluster(instances), OperatorSettings.Default);
        var instancePods = One<V1StatefulSet>(desired, "demo").Spec.Template.Metadata.Labels;
        var computePods = One<V1Deployment>(desired, "demo-compute").Spec.Template.Metadata.Labels;
        static bool Selects(IDictionary<string, string> selector, IDictionary<string, string> labels) =>
            selector.All(s => labels.TryGetValue(s.Key, out var v) && v == s.Value);

        Assert.True(Selects(One<V1StatefulSet>(desired, "demo").Spec.Selector.MatchLabels, instancePods));
        Assert.True(Selects(One<V1PodDisruptionBudget>(desired, "demo").Spec.Selector.MatchLabels, instancePods));
        Assert.True(Selects(One<V1Deployment>(desired, "demo-compute").Spec.Selector.MatchLabels, computePods));
        Assert.False(Selects(One<V1Deployment>(desired, "demo-compute").Spec.Selector.MatchLabels, instancePods));
        foreach (var name in new[] { "demo-hl", "demo-r" })
        {
            Assert.True(Selects(One<V1Service>(desired, name).Spec.Selector, instancePods));
        }

        // The -rw and -ro Services follow the role label each instance manager sets on its own pod.
        var primary = new Dictionary<string, string>(instancePods) { [ClusterLabels.Role] = InstanceRoles.Primary };
        var replica = new Dictionary<string, string>(instancePods) { [ClusterLabels.Role] = InstanceRoles.Replica };
        Assert.True(Selects(One<V1Service>(desired, "demo-rw").Spec.Selector, primary));
        Assert.False(Selects(One<V1Service>(desired, "demo-rw").Spec.Selector, replica));
        Assert.True(Selects(One<V1Service>(desired, "demo-ro").Spec.Selector, replica));
        Assert.False(Selects(One<V1Service>(desired, "demo-ro").Spec.Selector, primary));
        Assert.True(Selects(One<V1Service>(desired, "demo-compute").Spec.Selector, computePods));

        var headless = One<V1Service>(desired, "demo-hl").Spec;
        Assert.Equal(("None", true), (headless.ClusterIP, headless.PublishNotReadyAddresses ?? false));
        Assert.Equal("demo-hl", One<V1StatefulSet>(desired, "demo").Spec.ServiceName);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void Each_pod_reads_the_one_rendered_config_as_its_own_member_through_the_instance_managers_parser(int instances)
    {
        var desired = ObjectPlanner.Render(Cluster(instances), OperatorSettings.Default);
        var read = ReadAsEachPod(One<V1ConfigMap>(desired, "demo-config").Data[ObjectPlanner.InstanceConfigKey], instances);
        for (var ordinal = 0; ordinal < instances; ordinal++)
        {
            var options = read[ordinal];
            Assert.Equal((ulong)ordinal + 1, options.Id);
            Assert.Equal(instances, options.Peers.Count);
            Assert.Equal($"demo-{ordinal}.demo-hl.memory.svc", options.Self.Host);
            Assert.StartsWith(ObjectPlanner.DataMount + "/", options.DataRoot, StringComparison.Ordinal);
            Assert.Equal(ReplicationModes.Async, options.ReplicationMode);
            Assert.False(options.Join, "a founding member founds the cluster, it does not join");
            Assert.Equal(options.Peers, options.FoundingPeers);
        }

        var container = Assert.Single(One<V1StatefulSet>(desired, "demo").Spec.Template.Spec.Containers);
        Assert.Equal(["memorycluster", "instance", "--config", $"{ObjectPlanner.ConfigMount}/{ObjectPlanner.InstanceConfigKey}"], container.Command);
        var podName = Assert.Single(container.Env, e => e.Name == InstanceOptionsParser.EnvironmentName("pod-name"));
        Assert.Equal("metadata.name", podName.ValueFrom.FieldRef.FieldPath);
    }

    [Theory]
    [InlineData(5, new ulong[] { 1, 2, 3, 4, 5 })]
    [InlineData(5, new ulong[] { 1, 2, 3, 6, 7 })]
    [InlineData(4, new ulong[] { 1, 2, 3, 4 })]
    public void Pods_added_by_a_scale_read_the_same_config_as_joining_members_under_their_ids(int pods, ulong[] ids)
    {
        // Founded by 3; grown (ids 4 and 5, or 6 and 7 for pods that come back after a scale down), or mid-change (4 pods).
        var identities = new MemberIdentities([new(1), new(2), new(3)], [.. ids.Select(i => new MemberId(i))]);
        var desired = ObjectPlanner.Render(Cluster(pods == 4 ? 3 : pods), OperatorSettings.Default, pods, identities);
        var config = One<V1ConfigMap>(desired, "demo-config").Data[ObjectPlanner.InstanceConfigKey];
        Assert.Contains("founders = 1,2,3\n", config, StringComparison.Ordinal);
        var read = ReadAsEachPod(config, pods);
        for (var ordinal = 0; ordinal < pods; ordinal++)
        {
            Assert.Equal((ids[ordinal], ordinal >= 3), (read[ordinal].Id, read[ordinal].Join));
            Assert.Equal([1UL, 2, 3], read[ordinal].FoundingPeers.Select(p => p.Id));
        }
    }

    /// <summary>The rendered instance.conf read by the instance manager's own parser as each pod would (its name from the pod).</summary>
    private static List<InstanceOptions> ReadAsEachPod(string config, int pods)
    {
        var values = new Dictionary<string, string>(InstanceOptionsParser.ReadFile(config, out var fileErrors));
        Assert.Empty(fileErrors);

        // The mounted Secret files do not exist here: stand in for them, keeping every other setting as rendered.
        var dir = Directory.CreateTempSubdirectory("mc-render-");
        try
        {
            Assert.Equal(ObjectPlanner.SecretsMount + "/superuser/password", values["superuser-password-file"]);
            foreach (var key in new[] { "cluster-key-file", "replication-password-file", "app-password-file", "superuser-password-file" })
            {
                Assert.StartsWith(ObjectPlanner.SecretsMount + "/", values[key], StringComparison.Ordinal);
                values[key] = Path.Combine(dir.FullName, key);
                File.WriteAllBytes(values[key], [.. Enumerable.Repeat((byte)'k', 32)]);
            }

            foreach (var key in new[] { "tls-cert-file", "tls-key-file", "tls-ca-file" })
            {
                Assert.StartsWith(ObjectPlanner.TlsMount + "/", values[key], StringComparison.Ordinal);
                values[key] = Path.Combine(dir.FullName, key);
                File.WriteAllText(values[key], "pem");
            }

            // The ConfigMap's own postgresql.conf, as mounted next to instance.conf.
            Assert.Equal($"{ObjectPlanner.ConfigMount}/{ObjectPlanner.ParametersKey}", values["parameters-file"]);
            values["parameters-file"] = Path.Combine(dir.FullName, ObjectPlanner.ParametersKey);
            File.WriteAllText(values["parameters-file"], ObjectPlanner.Parameters(new Dictionary<string, string> { ["work_mem"] = "8MB" }));

            var read = new List<InstanceOptions>();
            for (var ordinal = 0; ordinal < pods; ordinal++)
            {
                var (options, errors) = InstanceOptionsParser.Parse(new Dictionary<string, string>(values) { ["pod-name"] = $"demo-{ordinal}" });
                Assert.Empty(errors);
                Assert.Equal(Path.Combine(dir.FullName, "tls-key-file"), options!.Tls!.KeyFile);
                Assert.Equal(values["superuser-password-file"], options.SuperuserPasswordFile);
                Assert.Equal(values["parameters-file"], options.ParametersFile);
                read.Add(options);
            }

            return read;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_certificates_are_requested_by_name_and_the_server_secret_is_mounted_read_only()
    {
        var desired = ObjectPlanner.Render(Cluster(5), OperatorSettings.Default);
        Assert.Equal(("demo-ca", "demo-server-tls"), (desired.Tls.CaSecret, desired.Tls.ServerSecret));
        Assert.Contains("demo-4.demo-hl.memory.svc", desired.Tls.Server.DnsNames);
        Assert.Contains("demo-rw.memory.svc", desired.Tls.Server.DnsNames);

        var pod = One<V1StatefulSet>(desired, "demo").Spec.Template.Spec;
        var volume = Assert.Single(pod.Volumes, v => v.Name == "server-tls");
        Assert.Equal(("demo-server-tls", Convert.ToInt32("400", 8)), (volume.Secret.SecretName, volume.Secret.DefaultMode));
        var mount = Assert.Single(Assert.Single(pod.Containers).VolumeMounts, m => m.Name == "server-tls");
        Assert.Equal((ObjectPlanner.TlsMount, true), (mount.MountPath, mount.ReadOnlyProperty ?? false));

        // The key never passes through the planner: no Secret object, no data, only names.
        Assert.DoesNotContain(desired.Objects, o => o is V1Secret);
        Assert.DoesNotContain(desired.Secrets, s => s.Name is "demo-ca" or "demo-server-tls");
    }

    [Fact]
    public void A_parameter_change_changes_the_config_map_but_not_the_pod_template_so_no_pod_restarts_for_it()
    {
        var before = ObjectPlanner.Render(Cluster(), OperatorSettings.Default);
        var cluster = Cluster();
        var after = ObjectPlanner.Render(
            cluster with { Spec = cluster.Spec with { Postgres = cluster.Spec.Postgres with { Parameters = new Dictionary<string, string> { ["work_mem"] = "64MB", ["shared_buffers"] = "1GB" } } } },
            OperatorSettings.Default);

        Assert.NotEqual(
            One<V1ConfigMap>(before, "demo-config").Data[ObjectPlanner.ParametersKey],
            One<V1ConfigMap>(after, "demo-config").Data[ObjectPlanner.ParametersKey]);
        Assert.Equal(
            ObjectDiff.Hash(One<V1StatefulSet>(before, "demo")),
            ObjectDiff.Hash(One<V1StatefulSet>(after, "demo")));
    }

    [Fact]
    public void The_replication_mode_and_parameters_reach_the_config_quoted_as_postgresql_reads_them()
    {
        var cluster = Cluster() with
        {
            Spec = new MemoryClusterSpec
            {
                Replication = new ReplicationSpec { Mode = ReplicationModes.Quorum },
                Postgres = new PostgresSpec { Parameters = new Dictionary<string, string> { ["work_mem"] = "16MB", ["application_name"] = "it's \\here" } },
            },
        };
        var data = One<V1ConfigMap>(ObjectPlanner.Render(cluster, OperatorSettings.Default), "demo-config").Data;
        Assert.Contains("mode = quorum\n", data[ObjectPlanner.InstanceConfigKey], StringComparison.Ordinal);
        Assert.Equal("application_name = 'it''s \\\\here'\nwork_mem = '16MB'\n", data[ObjectPlanner.ParametersKey]);
    }

    [Theory]
    [InlineData(AntiAffinityModes.Required, true)]
    [InlineData(AntiAffinityModes.Preferred, false)]
    public void Anti_affinity_follows_the_spec(string mode, bool required)
    {
        var cluster = Cluster() with { Spec = new MemoryClusterSpec { Scheduling = new SchedulingSpec { AntiAffinity = mode, TopologyKey = "zone" } } };
        var affinity = One<V1StatefulSet>(ObjectPlanner.Render(cluster, OperatorSettings.Default), "demo").Spec.Template.Spec.Affinity.PodAntiAffinity;
        Assert.Equal(required, affinity.RequiredDuringSchedulingIgnoredDuringExecution is { Count: 1 });
        Assert.Equal(!required, affinity.PreferredDuringSchedulingIgnoredDuringExecution is { Count: 1 });
        var term = affinity.RequiredDuringSchedulingIgnoredDuringExecution?.Single() ?? affinity.PreferredDuringSchedulingIgnoredDuringExecution.Single().PodAffinityTerm;
        Assert.Equal("zone", term.TopologyKey);
    }

    [Fact]
    public void No_compute_replicas_render_no_compute_objects()
    {
        var cluster = Cluster() with { Spec = new MemoryClusterSpec { Compute = new ComputeSpec { Replicas = 0 } } };
        Assert.DoesNotContain(ObjectPlanner.Render(cluster, OperatorSettings.Default).Objects, o => o.Metadata.Name == "demo-compute");
    }

    [Fact]
    public void Names_of_the_longest_allowed_cluster_stay_within_kubernetes_limits()
    {
        var name = new string('a', 50);
        var desired = ObjectPlanner.Render(Cluster(5, name), OperatorSettings.Default);
        Assert.All(desired.Objects, o => Assert.True(o.Metadata.Name.Length <= 63, o.Metadata.Name));
        // A Secret's name is a DNS subdomain (up to 253 characters), not a label: demo-compute-token may pass 63.
        Assert.All(desired.Secrets, s => Assert.True(s.Name.Length <= 253, s.Name));
        Assert.All(desired.Secrets.Where(s => !s.Name.EndsWith("-compute-token", StringComparison.Ordinal)), s => Assert.True(s.Name.Length <= 63, s.Name));
        var names = new ClusterNames(name, "memory");
        Assert.All(Enumerable.Range(0, 5), i => Assert.True(names.Pod(i).Length <= 63));
    }

    [Fact]
    public void Pods_run_as_the_images_non_root_user_and_the_instance_may_only_touch_its_own_clusters_pods()
    {
        var desired = ObjectPlanner.Render(Cluster(), OperatorSettings.Default with { RunAsUser = 1234 });
        foreach (var pod in new[] { One<V1StatefulSet>(desired, "demo").Spec.Template.Spec, One<V1Deployment>(desired, "demo-compute").Spec.Template.Spec })
        {
            Assert.Equal((true, 1234L, 1234L), (pod.SecurityContext.RunAsNonRoot ?? false, pod.SecurityContext.RunAsUser ?? 0, pod.SecurityContext.FsGroup ?? 0));
            Assert.All(pod.Containers, c => Assert.False(c.SecurityContext.AllowPrivilegeEscalation ?? true));
        }

        var rules = One<V1Role>(desired, "demo-instance").Rules;
        Assert.Equal(["demo-0", "demo-1", "demo-2"], rules.Single(r => r.Resources.Contains("pods")).ResourceNames);
        Assert.Equal(["get", "patch"], rules.Single(r => r.Resources.Contains("pods")).Verbs);
        Assert.DoesNotContain(rules, r => r.Verbs.Any(v => v is "*" or "create" or "delete" or "update" or "list"));
        Assert.Equal("demo-instance", One<V1StatefulSet>(desired, "demo").Spec.Template.Spec.ServiceAccountName);
    }
}

public sealed class NetworkPolicyAndRetentionTests
{
    private static MemoryClusterResource Cluster(MemoryClusterSpec spec) => new()
    {
        Metadata = new ObjectMeta { Name = "demo", Namespace = "memory", Uid = "u" },
        Spec = spec,
    };

    [Fact]
    public void No_network_policy_unless_the_spec_asks()
    {
        var desired = ObjectPlanner.Render(Cluster(new MemoryClusterSpec()), OperatorSettings.Default);
        Assert.DoesNotContain(desired.Objects, o => o is V1NetworkPolicy);
    }

    [Fact]
    public void The_network_policy_admits_peers_the_operator_and_postgres_clients_only()
    {
        var desired = ObjectPlanner.Render(Cluster(new MemoryClusterSpec { NetworkPolicy = new NetworkPolicySpec { Enabled = true } }), OperatorSettings.Default);
        var policy = Assert.Single(desired.Objects.OfType<V1NetworkPolicy>());
        Assert.Equal("demo-instances", policy.Metadata.Name);
        Assert.Equal(["Ingress"], policy.Spec.PolicyTypes);
        Assert.Equal("demo", policy.Spec.PodSelector.MatchLabels[ClusterLabels.Cluster]);

        // Which port each kind of source may reach.
        string Describe(V1NetworkPolicyIngressRule r) =>
            (r.FromProperty is null ? "anyone" : r.FromProperty.Single().NamespaceSelector is not null ? "operator" : "peers")
            + ":" + string.Join(",", r.Ports.Select(p => p.Port.Value));
        Assert.Equal(["peers:5432,7000,8000", "operator:8000", "anyone:5432"], policy.Spec.Ingress.Select(Describe));

        var withMetrics = ObjectPlanner.Render(Cluster(new MemoryClusterSpec { NetworkPolicy = new NetworkPolicySpec { Enabled = true }, Monitoring = new MonitoringSpec { Enabled = true } }), OperatorSettings.Default);
        Assert.Contains("anyone:8000", withMetrics.Objects.OfType<V1NetworkPolicy>().Single().Spec.Ingress.Select(Describe));
    }

    [Theory]
    [InlineData(ClaimRetention.Retain)]
    [InlineData(ClaimRetention.Delete)]
    public void The_claims_follow_the_specs_retention_on_deletion_and_are_always_kept_on_scale_down(string whenDeleted)
    {
        var desired = ObjectPlanner.Render(Cluster(new MemoryClusterSpec { Storage = new StorageSpec { WhenDeleted = whenDeleted } }), OperatorSettings.Default);
        var policy = desired.Objects.OfType<V1StatefulSet>().Single().Spec.PersistentVolumeClaimRetentionPolicy;
        Assert.Equal((whenDeleted, "Retain"), (policy.WhenDeleted, policy.WhenScaled));
    }

    [Fact]
    public void An_unknown_retention_is_refused_with_its_path()
    {
        var errors = SpecValidator.ValidateSpec(new MemoryClusterSpec { Storage = new StorageSpec { WhenDeleted = "Keep" } });
        var error = Assert.Single(errors);
        Assert.Equal("spec.storage.whenDeleted", error.Path);
        Assert.Contains("Retain or Delete", error.Message, StringComparison.Ordinal);
    }
}
