namespace Moldau.Cluster.ObjectStore;

/// <summary>
/// The object storage cluster mode keeps record data in: whole objects written once and never
/// changed, read back in byte ranges. One bucket (or whatever the implementation is over); keys
/// are <c>/</c>-separated paths (see <see cref="ObjectKeys"/>).
/// </summary>
/// <remarks>
/// Failures are <see cref="ObjectStoreException"/>s whose <see cref="ObjectStoreException.Kind"/>
/// says whether trying again can help; a caller never sees the SDK's own exceptions.
/// </remarks>
public interface IObjectStore
{
    /// <summary>
    /// Creates <paramref name="key"/> with <paramref name="data"/> only if no object has that key:
    /// <see cref="PutResult.Created"/> when this call wrote it, <see cref="PutResult.AlreadyExists"/>
    /// when an object was there already (it is left unchanged; that object may be the one an
    /// earlier attempt of the same upload wrote, whose answer was lost).
    /// </summary>
    Task<PutResult> PutIfAbsentAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads bytes from <paramref name="position"/> of <paramref name="key"/> into
    /// <paramref name="destination"/> and returns how many it read: the whole destination, or fewer
    /// when the object ends first (0 at or past its end). A missing object throws with
    /// <see cref="ObjectStoreErrorKind.NotFound"/>.
    /// </summary>
    Task<int> ReadAsync(string key, long position, Memory<byte> destination, CancellationToken cancellationToken = default);

    /// <summary>The whole object; a missing object throws with <see cref="ObjectStoreErrorKind.NotFound"/>.</summary>
    Task<byte[]> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Deletes <paramref name="key"/>; deleting an object that does not exist succeeds.</summary>
    Task DeleteAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Every object whose key starts with <paramref name="prefix"/>, in key order (UTF-8 binary order), page by page.</summary>
    IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken cancellationToken = default);
}

/// <summary>What a create-only put did.</summary>
public enum PutResult
{
    /// <summary>The object did not exist and this call created it.</summary>
    Created,

    /// <summary>An object with the key existed already (412 Precondition Failed); nothing was written.</summary>
    AlreadyExists,
}

/// <summary>One object of a listing.</summary>
/// <param name="Key">The full key.</param>
/// <param name="Size">Its length in bytes.</param>
/// <param name="LastModified">When it was written, as the store reports it (UTC).</param>
public readonly record struct ObjectInfo(string Key, long Size, DateTimeOffset LastModified);
