using System.Buffers;

namespace Moldau.Cluster.ObjectStore;

/// <summary>Where one batch lies in an uploaded object: its first byte and its length.</summary>
/// <param name="Position">The offset of the batch's first byte in the object.</param>
/// <param name="Size">The batch's length in bytes.</param>
public readonly record struct BatchLocation(long Position, int Size);

/// <summary>
/// Builds one produce object: record batches (of any partitions) copied one after another, as they
/// arrived, with no header or padding between them:
/// <code>
///   position 0          p1 = s0       p2 = s0 + s1
///   +-----------------+---------------+-----------------+----
///   | batch 0 (s0 B)  | batch 1 (s1 B)| batch 2 (s2 B)  | ...
///   +-----------------+---------------+-----------------+----
/// </code>
/// Each <see cref="Add"/> returns the batch's (position, size), which the commit records so that a
/// fetch reads exactly that range back. The object carries no index of its own: PostgreSQL has it.
/// The buffer is pooled; <see cref="Reset"/> reuses it for the next object, <see cref="Dispose"/>
/// returns it.
/// </summary>
public sealed class BatchObjectWriter : IDisposable
{
    private readonly List<BatchLocation> _locations = [];
    private byte[] _buffer;
    private int _length;

    /// <summary>A writer whose buffer starts at <paramref name="initialCapacity"/> bytes and grows as needed.</summary>
    public BatchObjectWriter(int initialCapacity = 1 << 20)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(initialCapacity);
        _buffer = ArrayPool<byte>.Shared.Rent(initialCapacity);
    }

    /// <summary>The object's length so far.</summary>
    public int Length => _length;

    /// <summary>How many batches it holds.</summary>
    public int BatchCount => _locations.Count;

    /// <summary>Each batch's location, in the order added.</summary>
    public IReadOnlyList<BatchLocation> Locations => _locations;

    /// <summary>The object's bytes so far (valid until the next <see cref="Add"/> or <see cref="Reset"/>).</summary>
    public ReadOnlyMemory<byte> Content => _buffer.AsMemory(0, _length);

    /// <summary>Appends <paramref name="batch"/> (copied) and returns where it lies in the object.</summary>
    public BatchLocation Add(ReadOnlySpan<byte> batch)
    {
        if (batch.IsEmpty)
        {
            throw new ArgumentException("an empty batch has no place in an object", nameof(batch));
        }

        var end = (long)_length + batch.Length;
        if (end > Array.MaxLength)
        {
            throw new InvalidOperationException($"the object would exceed {Array.MaxLength} bytes; upload it first");
        }

        if (end > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(Array.MaxLength, Math.Max(end, 2L * _buffer.Length)));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        batch.CopyTo(_buffer.AsSpan(_length));
        var location = new BatchLocation(_length, batch.Length);
        _length = (int)end;
        _locations.Add(location);
        return location;
    }

    /// <summary>
    /// Uploads the object create-only under <paramref name="key"/>. <see cref="PutResult.AlreadyExists"/>
    /// means an object with that key was there: with keys from <see cref="ObjectKeys.NewProduceKey"/>
    /// that is an earlier attempt of this same upload whose answer was lost, so the content is this.
    /// </summary>
    public Task<PutResult> UploadAsync(IObjectStore store, string key, CancellationToken cancellationToken = default)
    {
        if (_length == 0)
        {
            throw new InvalidOperationException("no batches to upload");
        }

        return store.PutIfAbsentAsync(key, Content, cancellationToken);
    }

    /// <summary>Empties the writer for the next object, keeping its buffer.</summary>
    public void Reset()
    {
        _length = 0;
        _locations.Clear();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }

        _length = 0;
        _locations.Clear();
    }
}
