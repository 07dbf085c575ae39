namespace Moldau.Cluster.ObjectStore;

/// <summary>How an object-store operation failed, which decides what the caller does next.</summary>
public enum ObjectStoreErrorKind
{
    /// <summary>
    /// The store could not be reached or was busy (connection refused or reset, a timeout, 5xx,
    /// 429/503 SlowDown, 409 for a concurrent conditional write): the same request may succeed
    /// later. The outcome of a put that failed this way is unknown: the object may exist.
    /// </summary>
    Retriable,

    /// <summary>The object does not exist (404 NoSuchKey).</summary>
    NotFound,

    /// <summary>
    /// Trying again will not help without a change of configuration or request: credentials
    /// refused (403), no such bucket, a malformed request, a range that cannot be satisfied.
    /// </summary>
    Permanent,
}

/// <summary>An object-store operation failed; <see cref="Kind"/> says whether to try again.</summary>
public sealed class ObjectStoreException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ObjectStoreException(ObjectStoreErrorKind kind, string message, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
    }

    /// <summary>Whether trying again can help.</summary>
    public ObjectStoreErrorKind Kind { get; }

    /// <summary>The HTTP status the store answered, or null when it did not answer.</summary>
    public int? StatusCode { get; init; }

    /// <summary>The store's error code (e.g. <c>NoSuchBucket</c>), when it gave one.</summary>
    public string? ErrorCode { get; init; }

    /// <summary>True when the same request may succeed later.</summary>
    public bool IsRetriable => Kind == ObjectStoreErrorKind.Retriable;
}
