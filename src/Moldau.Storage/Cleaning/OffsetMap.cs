namespace Moldau.Storage.Cleaning;

/// <summary>
/// Each key of the cleaned region and the offset of its latest record. Kafka keeps 16-byte MD5
/// hashes of the keys in a fixed buffer and accepts the collision risk; this map keeps the keys
/// themselves, so a collision can never drop a live record, at the price of memory that grows
/// with the number and size of distinct keys.
/// </summary>
internal sealed class OffsetMap
{
    private readonly Dictionary<byte[], long> _latest = new(KeyComparer.Instance);

    /// <summary>Distinct keys seen.</summary>
    public int Count => _latest.Count;

    /// <summary>Records that the key's record at <paramref name="offset"/> is the latest so far.</summary>
    public void Put(ReadOnlySpan<byte> key, long offset)
    {
        var lookup = _latest.GetAlternateLookup<ReadOnlySpan<byte>>();
        lookup[key] = Math.Max(offset, lookup.TryGetValue(key, out var seen) ? seen : -1);
    }

    /// <summary>The latest offset of <paramref name="key"/>, or -1 when the key was not seen.</summary>
    public long Get(ReadOnlySpan<byte> key) =>
        _latest.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(key, out var offset) ? offset : -1;

    private sealed class KeyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly KeyComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => GetHashCode(obj.AsSpan());

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = default(HashCode);
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}
