using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace MemoryCluster.Api.Tests;

public sealed class CrdSchemaTests
{
    [Fact]
    public void Every_schema_node_is_structural()
    {
        var problems = new List<string>();
        Walk(Fixtures.Schema, "openAPIV3Schema", problems);
        Assert.Empty(problems);

        static void Walk(JsonObject node, string path, List<string> problems)
        {
            if (node.ContainsKey("$ref"))
            {
                problems.Add($"{path}: $ref is not allowed");
            }

            if (node["additionalProperties"] is JsonValue)
            {
                problems.Add($"{path}: additionalProperties must be a schema, not true/false");
            }

            if (node.ContainsKey("additionalProperties") && node.ContainsKey("properties"))
            {
                problems.Add($"{path}: properties and additionalProperties together");
            }

            var intOrString = node["x-kubernetes-int-or-string"]?.GetValue<bool>() == true;
            if (!node.ContainsKey("type") && !intOrString)
            {
                problems.Add($"{path}: no type");
            }

            if (node.ContainsKey("anyOf") && !intOrString)
            {
                problems.Add($"{path}: anyOf outside an int-or-string node");
            }

            foreach (var (name, child) in node["properties"]?.AsObject() ?? [])
            {
                Walk((JsonObject)child!, $"{path}.{name}", problems);
            }

            if (node["additionalProperties"] is JsonObject additional)
            {
                Walk(additional, $"{path}[*]", problems);
            }

            var items = node["items"] as JsonObject;
            if (items is not null)
            {
                Walk(items, $"{path}[]", problems);
            }

            if (node["x-kubernetes-list-type"]?.GetValue<string>() == "map")
            {
                var required = items?["required"]?.AsArray().Select(r => r!.GetValue<string>()).ToHashSet() ?? [];
                foreach (var key in node["x-kubernetes-list-map-keys"]!.AsArray())
                {
                    if (!required.Contains(key!.GetValue<string>()))
                    {
                        problems.Add($"{path}: list-map key '{key}' must be required");
                    }
                }
            }
        }
    }

    [Fact]
    public void Every_spec_field_has_a_description()
    {
        var missing = new List<string>();
        Walk(Fixtures.SchemaAt("spec"), "spec", missing);
        Walk(Fixtures.SchemaAt("status"), "status", missing);
        Assert.Empty(missing);

        static void Walk(JsonObject node, string path, List<string> missing)
        {
            if (!node.ContainsKey("description"))
            {
                missing.Add(path);
            }

            foreach (var (name, child) in node["properties"]?.AsObject() ?? [])
            {
                Walk((JsonObject)child!, $"{path}.{name}", missing);
            }
        }
    }

    [Fact]
    public void Crd_defaults_give_the_same_spec_as_the_csharp_defaults()
    {
        var defaulted = ApplyDefaults(Fixtures.SchemaAt("spec"), new JsonObject());
        var fromCrd = JsonSerializer.Deserialize<MemoryClusterSpec>(defaulted.ToJsonString(), ApiJson.Options)!;

        Assert.Equal(
            JsonSerializer.Serialize(new MemoryClusterSpec(), ApiJson.Options),
            JsonSerializer.Serialize(fromCrd, ApiJson.Options));
        Assert.Equal(3, defaulted["instances"]!.GetValue<int>());
        Assert.Equal("async", defaulted["replication"]!["mode"]!.GetValue<string>());

        // Defaults apply on the way in, like the API server's: nested object defaults fill their own fields.
        static JsonObject ApplyDefaults(JsonObject schema, JsonObject value)
        {
            foreach (var (name, child) in schema["properties"]?.AsObject() ?? [])
            {
                if (!value.ContainsKey(name) && child!["default"] is { } d)
                {
                    value[name] = d.DeepClone();
                }

                if (value[name] is JsonObject nested && child!["type"]?.GetValue<string>() == "object")
                {
                    ApplyDefaults((JsonObject)child, nested);
                }
            }

            return value;
        }
    }

    [Fact]
    public void Defaults_pass_the_schema_and_the_validator()
    {
        var cluster = Fixtures.Valid();
        Assert.Empty(SchemaEvaluator.Violations(Fixtures.Schema, Fixtures.ToJsonNode(cluster)));
        Assert.Empty(SpecValidator.Validate(cluster));
    }

    [Fact]
    public void Crd_names_scope_and_version_are_the_api_group()
    {
        var spec = Fixtures.Crd["spec"]!;
        Assert.Equal("memoryclusters.memorycluster.io", Fixtures.Crd["metadata"]!["name"]!.GetValue<string>());
        Assert.Equal("memorycluster.io", spec["group"]!.GetValue<string>());
        Assert.Equal("Namespaced", spec["scope"]!.GetValue<string>());
        Assert.Equal(["mc"], spec["names"]!["shortNames"]!.AsArray().Select(n => n!.GetValue<string>()));
        var version = Assert.Single(spec["versions"]!.AsArray())!;
        Assert.Equal("v1alpha1", version["name"]!.GetValue<string>());
        Assert.True(version["storage"]!.GetValue<bool>());
    }

    [Fact]
    public void Status_and_scale_subresources_point_at_real_fields()
    {
        var subresources = Fixtures.Crd["spec"]!["versions"]![0]!["subresources"]!;
        Assert.NotNull(subresources["status"]);
        var scale = subresources["scale"]!;
        Assert.Equal("integer", FieldAt(scale["specReplicasPath"]!.GetValue<string>())["type"]!.GetValue<string>());
        Assert.Equal("integer", FieldAt(scale["statusReplicasPath"]!.GetValue<string>())["type"]!.GetValue<string>());
        Assert.Equal("string", FieldAt(scale["labelSelectorPath"]!.GetValue<string>())["type"]!.GetValue<string>());
    }

    [Fact]
    public void Printer_columns_are_the_documented_ones_and_point_at_real_fields()
    {
        var columns = Fixtures.Crd["spec"]!["versions"]![0]!["additionalPrinterColumns"]!.AsArray();
        Assert.Equal(
            ["Instances", "Ready", "Primary", "Epoch", "Phase", "Age"],
            columns.Select(c => c!["name"]!.GetValue<string>()));
        foreach (var column in columns.Where(c => c!["name"]!.GetValue<string>() != "Age"))
        {
            var field = FieldAt(column!["jsonPath"]!.GetValue<string>());
            Assert.Equal(column["type"]!.GetValue<string>(), field["type"]!.GetValue<string>());
        }
    }

    [Fact]
    public void Conditions_are_a_list_map_keyed_by_type_with_the_metav1_shape()
    {
        var conditions = Fixtures.SchemaAt("status.conditions");
        Assert.Equal("map", conditions["x-kubernetes-list-type"]!.GetValue<string>());
        Assert.Equal(["type"], conditions["x-kubernetes-list-map-keys"]!.AsArray().Select(k => k!.GetValue<string>()));
        var item = conditions["items"]!;
        Assert.Equal(
            ["type", "status", "lastTransitionTime", "reason", "message"],
            item["required"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.Equal("date-time", item["properties"]!["lastTransitionTime"]!["format"]!.GetValue<string>());
    }

    [Fact]
    public void Condition_types_and_reasons_are_camel_case_words_kubernetes_accepts()
    {
        var reason = new Regex("^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$");
        var constants = typeof(ConditionReasons).GetFields().Concat(typeof(ConditionTypes).GetFields())
            .Where(f => f.IsLiteral)
            .Select(f => (string)f.GetValue(null)!)
            .ToList();
        Assert.True(constants.Count >= 20);
        Assert.All(constants, c => Assert.Matches(reason, c));
        Assert.All(constants, c => Assert.True(char.IsUpper(c[0]), c));
        Assert.Equal(6, ConditionTypes.All.Distinct().Count());
    }

    private static JsonObject FieldAt(string jsonPath) => Fixtures.SchemaAt(jsonPath.TrimStart('.'));
}
