using System.Collections;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using MemoryCluster.Api.Meta;

namespace MemoryCluster.Api.Crd;

/// <summary>
/// Builds the MemoryCluster CustomResourceDefinition from the C# types: a structural OpenAPI v3 schema (every
/// node typed, no <c>$ref</c>), descriptions from the XML docs, defaults from the property initialisers, CEL
/// rules, subresources and printer columns. Pure: the same types and docs always give the same document.
/// </summary>
public static class CrdBuilder
{
    /// <summary>The CRD as a JSON tree, in the key order it is written in.</summary>
    public static JsonObject Build(XmlDocumentation docs)
    {
        var root = ObjectSchema(typeof(MemoryClusterResource), docs, isRoot: true);
        return new JsonObject
        {
            ["apiVersion"] = "apiextensions.k8s.io/v1",
            ["kind"] = "CustomResourceDefinition",
            ["metadata"] = new JsonObject { ["name"] = ApiGroup.CrdName },
            ["spec"] = new JsonObject
            {
                ["group"] = ApiGroup.Group,
                ["names"] = new JsonObject
                {
                    ["kind"] = ApiGroup.Kind,
                    ["listKind"] = ApiGroup.ListKind,
                    ["plural"] = ApiGroup.Plural,
                    ["singular"] = ApiGroup.Singular,
                    ["shortNames"] = new JsonArray(ApiGroup.ShortName),
                },
                ["scope"] = "Namespaced",
                ["versions"] = new JsonArray(new JsonObject
                {
                    ["name"] = ApiGroup.Version,
                    ["served"] = true,
                    ["storage"] = true,
                    ["subresources"] = new JsonObject
                    {
                        ["status"] = new JsonObject(),
                        ["scale"] = new JsonObject
                        {
                            ["specReplicasPath"] = ".spec.instances",
                            ["statusReplicasPath"] = ".status.readyInstances",
                            ["labelSelectorPath"] = ".status.selector",
                        },
                    },
                    ["additionalPrinterColumns"] = PrinterColumns(),
                    ["schema"] = new JsonObject { ["openAPIV3Schema"] = root },
                }),
            },
        };
    }

    private static JsonArray PrinterColumns()
    {
        static JsonObject Column(string name, string type, string path, string description) => new()
        {
            ["name"] = name,
            ["type"] = type,
            ["jsonPath"] = path,
            ["description"] = description,
        };

        return
        [
            Column("Instances", "integer", ".spec.instances", "Desired number of instances"),
            Column("Ready", "integer", ".status.readyInstances", "Instances ready for their role"),
            Column("Primary", "string", ".status.currentPrimary", "The primary instance"),
            Column("Epoch", "integer", ".status.epoch", "Fencing token, +1 on every change of primary"),
            Column("Phase", "string", ".status.phase", "Where the cluster is in its life"),
            Column("Age", "date", ".metadata.creationTimestamp", "Time since creation"),
        ];
    }

    private static JsonObject ObjectSchema(Type type, XmlDocumentation docs, bool isRoot = false)
    {
        var schema = new JsonObject { ["type"] = "object" };
        if (docs.For(type) is { } description)
        {
            schema["description"] = description;
        }

        var defaults = isRoot ? null : CreateDefaultInstance(type);
        var properties = new JsonObject();
        var required = new JsonArray();
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetCustomAttribute<JsonExtensionDataAttribute>() is not null)
            {
                continue;
            }

            var name = JsonName(property);
            JsonObject node;
            if (isRoot && property.PropertyType == typeof(ObjectMeta))
            {
                node = new JsonObject { ["type"] = "object" };
            }
            else
            {
                node = PropertySchema(property, docs);
                if (!isRoot || property.Name == nameof(MemoryClusterResource.Spec))
                {
                    AddDefault(node, property, defaults, type);
                }
            }

            properties[name] = node;
            if (property.GetCustomAttribute<RequiredMemberAttribute>() is not null)
            {
                required.Add(name);
            }
        }

        schema["properties"] = properties;
        if (required.Count > 0)
        {
            schema["required"] = required;
        }

        AddCelRules(schema, type.GetCustomAttributes<CelRuleAttribute>());
        return schema;
    }

    private static JsonObject PropertySchema(PropertyInfo property, XmlDocumentation docs)
    {
        var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        var node = TypeSchema(type, docs);
        if (docs.For(property) is { } description)
        {
            node["description"] = description;
        }

        if (property.GetCustomAttribute<BoundsAttribute>() is { } bounds)
        {
            var isString = type == typeof(string);
            node[isString ? "minLength" : "minimum"] = bounds.Minimum;
            node[isString ? "maxLength" : "maximum"] = bounds.Maximum;
        }

        if (property.GetCustomAttribute<OneOfAttribute>() is { } oneOf)
        {
            node["enum"] = new JsonArray([.. oneOf.Values.Select(v => JsonValue.Create(v))]);
        }

        if (property.GetCustomAttribute<MatchesAttribute>() is { } matches)
        {
            var target = node["additionalProperties"] as JsonObject ?? node;
            target["pattern"] = matches.Pattern;
        }

        if (property.GetCustomAttribute<MaxItemsAttribute>() is { } maxItems)
        {
            node[node["type"]?.GetValue<string>() == "array" ? "maxItems" : "maxProperties"] = maxItems.Count;
        }

        if (property.GetCustomAttribute<ListMapKeysAttribute>() is { } mapKeys)
        {
            node["x-kubernetes-list-type"] = "map";
            node["x-kubernetes-list-map-keys"] = new JsonArray([.. mapKeys.Keys.Select(k => JsonValue.Create(k))]);
        }

        AddCelRules(node, property.GetCustomAttributes<CelRuleAttribute>());
        return node;
    }

    private static JsonObject TypeSchema(Type type, XmlDocumentation docs)
    {
        if (type == typeof(string))
        {
            return new JsonObject { ["type"] = "string" };
        }

        if (type == typeof(int))
        {
            return new JsonObject { ["type"] = "integer", ["format"] = "int32" };
        }

        if (type == typeof(long))
        {
            return new JsonObject { ["type"] = "integer", ["format"] = "int64" };
        }

        if (type == typeof(bool))
        {
            return new JsonObject { ["type"] = "boolean" };
        }

        if (type == typeof(DateTimeOffset))
        {
            return new JsonObject { ["type"] = "string", ["format"] = "date-time" };
        }

        if (type == typeof(Quantity))
        {
            return new JsonObject
            {
                ["anyOf"] = new JsonArray(new JsonObject { ["type"] = "integer" }, new JsonObject { ["type"] = "string" }),
                ["pattern"] = Quantity.Pattern,
                ["x-kubernetes-int-or-string"] = true,
            };
        }

        if (DictionaryValueType(type) is { } valueType)
        {
            return new JsonObject { ["type"] = "object", ["additionalProperties"] = TypeSchema(valueType, docs) };
        }

        if (ListItemType(type) is { } itemType)
        {
            return new JsonObject { ["type"] = "array", ["items"] = TypeSchema(itemType, docs) };
        }

        if (type.IsClass && type.Namespace?.StartsWith("MemoryCluster.Api", StringComparison.Ordinal) == true)
        {
            return ObjectSchema(type, docs);
        }

        throw new InvalidOperationException($"the CRD generator has no schema for {type.FullName}");
    }

    private static void AddDefault(JsonObject node, PropertyInfo property, object? defaults, Type owner)
    {
        if (defaults is null)
        {
            return;
        }

        var value = property.GetValue(defaults);
        switch (value)
        {
            case null:
                return;
            case string or int or long or bool:
                node["default"] = JsonSerializer.SerializeToNode(value, ApiJson.Options);
                return;
            case Quantity quantity:
                node["default"] = quantity.Text;
                return;
            case IEnumerable:
                return;
            default:
                if (HasDefaults(node))
                {
                    node["default"] = new JsonObject();
                }

                return;
        }

        static bool HasDefaults(JsonObject schema) =>
            schema["properties"] is JsonObject properties
            && properties.Any(p => p.Value is JsonObject child && (child.ContainsKey("default") || HasDefaults(child)));
    }

    private static object? CreateDefaultInstance(Type type)
    {
        if (type.GetConstructor(Type.EmptyTypes) is null)
        {
            return null;
        }

        var instance = Activator.CreateInstance(type);
        return instance;
    }

    private static void AddCelRules(JsonObject node, IEnumerable<CelRuleAttribute> rules)
    {
        var list = new JsonArray();
        foreach (var rule in rules)
        {
            list.Add(new JsonObject { ["rule"] = rule.Rule, ["message"] = rule.Message });
        }

        if (list.Count > 0)
        {
            node["x-kubernetes-validations"] = list;
        }
    }

    private static string JsonName(PropertyInfo property) =>
        property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);

    private static Type? DictionaryValueType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() is var d
        && (d == typeof(IReadOnlyDictionary<,>) || d == typeof(Dictionary<,>) || d == typeof(IDictionary<,>))
        && type.GetGenericArguments()[0] == typeof(string)
            ? type.GetGenericArguments()[1]
            : null;

    private static Type? ListItemType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() is var d
        && (d == typeof(IReadOnlyList<>) || d == typeof(List<>) || d == typeof(IList<>))
            ? type.GetGenericArguments()[0]
            : null;
}
