namespace MemoryCluster.Compute.Engine.Graph;

/// <summary>Maps strings to dense ids 0, 1, 2, ... and back.</summary>
internal sealed class StringInterner
{
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly List<string> _names = [];

    public int Count => _names.Count;

    public int Intern(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_ids.TryGetValue(name, out var id))
        {
            id = _names.Count;
            _ids.Add(name, id);
            _names.Add(name);
        }

        return id;
    }

    public bool TryGet(string name, out int id) => _ids.TryGetValue(name, out id);

    public string NameOf(int id) => _names[id];
}
