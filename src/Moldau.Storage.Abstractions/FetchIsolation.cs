namespace Moldau.Storage;

/// <summary>How far a reader may read a partition log (Kafka's <c>FetchIsolation</c>).</summary>
public enum FetchIsolation
{
    /// <summary>Up to the log end: the broker's own readers (coordinator replay, a follower).</summary>
    LogEnd,

    /// <summary>Up to the high watermark: a consumer with isolation.level=read_uncommitted.</summary>
    HighWatermark,

    /// <summary>Up to the last stable offset: a consumer with isolation.level=read_committed.</summary>
    TxnCommitted,
}
