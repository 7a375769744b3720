namespace MemoryCluster.Compute.Engine.Internal;

/// <summary>
/// A binary heap of (distance, id) kept in one reusable array. A min-heap by default;
/// constructed with <c>max: true</c> it keeps the largest distance on top (keys are negated).
/// </summary>
internal sealed class DistanceHeap(bool max)
{
    private readonly float _sign = max ? -1f : 1f;
    private float[] _keys = new float[64];
    private int[] _ids = new int[64];

    public int Count { get; private set; }

    public float TopDistance => _keys[0] * _sign;

    public int TopId => _ids[0];

    public void Clear() => Count = 0;

    public void Push(float distance, int id)
    {
        if (Count == _keys.Length)
        {
            Array.Resize(ref _keys, Count * 2);
            Array.Resize(ref _ids, Count * 2);
        }

        var key = distance * _sign;
        var i = Count++;
        var keys = _keys;
        var ids = _ids;
        while (i > 0)
        {
            var parent = (i - 1) >> 1;
            if (keys[parent] <= key)
            {
                break;
            }

            keys[i] = keys[parent];
            ids[i] = ids[parent];
            i = parent;
        }

        keys[i] = key;
        ids[i] = id;
    }

    public void Pop()
    {
        var n = --Count;
        if (n == 0)
        {
            return;
        }

        var keys = _keys;
        var ids = _ids;
        var key = keys[n];
        var id = ids[n];
        var i = 0;
        while (true)
        {
            var child = (2 * i) + 1;
            if (child >= n)
            {
                break;
            }

            if (child + 1 < n && keys[child + 1] < keys[child])
            {
                child++;
            }

            if (keys[child] >= key)
            {
                break;
            }

            keys[i] = keys[child];
            ids[i] = ids[child];
            i = child;
        }

        keys[i] = key;
        ids[i] = id;
    }
}
