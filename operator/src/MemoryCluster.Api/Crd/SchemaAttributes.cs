namespace MemoryCluster.Api.Crd;

/// <summary>
/// A CEL rule (<c>x-kubernetes-validations</c>) on the schema node of a property or a type. The same rule is
/// checked in C# by <see cref="SpecValidator"/>; the <see cref="Id"/> ties the two together in tests.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Class, AllowMultiple = true)]
public sealed class CelRuleAttribute(string id, string rule, string message) : Attribute
{
    public string Id { get; } = id;

    public string Rule { get; } = rule;

    public string Message { get; } = message;
}

/// <summary>Marks a list as <c>x-kubernetes-list-type: map</c> keyed by the given fields.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ListMapKeysAttribute(params string[] keys) : Attribute
{
    public IReadOnlyList<string> Keys { get; } = keys;
}

/// <summary>A lower and upper bound on an integer, written as <c>minimum</c> / <c>maximum</c> in the schema.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class BoundsAttribute(long minimum, long maximum) : Attribute
{
    public long Minimum { get; } = minimum;

    public long Maximum { get; } = maximum;
}

/// <summary>The only values a string may take, written as <c>enum</c> in the schema.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class OneOfAttribute(params string[] values) : Attribute
{
    public IReadOnlyList<string> Values { get; } = values;
}

/// <summary>A regular expression a string must match, written as <c>pattern</c> in the schema.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class MatchesAttribute(string pattern) : Attribute
{
    public string Pattern { get; } = pattern;
}

/// <summary>The most entries a list or map may hold, written as <c>maxItems</c> / <c>maxProperties</c>.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class MaxItemsAttribute(int count) : Attribute
{
    public int Count { get; } = count;
}
