namespace Moldau.Broker;

/// <summary>
/// Turns one request frame into one response. The network layer calls
/// <see cref="Dispatch"/> for each frame of a connection in arrival order (requests with
/// different <see cref="OrderingKey"/>s may be dispatched side by side), without waiting for the
/// previous one to complete, and writes the completed responses back in arrival order.
/// </summary>
/// <remarks>
/// Contract for implementers: pipelined requests of a connection take effect in the order they
/// were dispatched. A request with an ordering key (a produce request) keeps its order per
/// partition itself (<see cref="ConnectionSession.WhenWritesDoneAsync"/> completes once those
/// writes are done); every other change of state (a topic creation) happens before the returned
/// task first yields, so the network layer dispatches a request without a key only after
/// the writes before it are done and the previous dispatch returned.
/// </remarks>
public interface IRequestDispatcher
{
    /// <summary>Handles a frame (the bytes after the 4-byte size prefix).</summary>
    /// <param name="frame">Request header and body. Valid until the returned task completes.</param>
    /// <param name="connection">The session of the connection it came in on.</param>
    /// <param name="cancellationToken">Cancelled when the connection or the broker shuts down.</param>
    ValueTask<DispatchResult> Dispatch(ReadOnlyMemory<byte> frame, ConnectionSession connection, CancellationToken cancellationToken);

    /// <summary>
    /// What a request must stay in order with. The network layer may dispatch requests of a
    /// connection that have different keys at the same time (each keeps its order with earlier
    /// requests of its key), and dispatches a request without a key (null) only after every
    /// earlier one. The default, null for everything, keeps strict arrival order.
    /// </summary>
    /// <param name="frame">Request header and body.</param>
    int? OrderingKey(ReadOnlyMemory<byte> frame) => null;
}

/// <summary>What to do after a request: send a response, send nothing, or close.</summary>
public readonly struct DispatchResult
{
    private DispatchResult(byte[]? response, int length, bool close, string? reason, bool pooled = false)
    {
        Pooled = pooled;
        Response = response;
        Length = length;
        Close = close;
        CloseReason = reason;
    }

    /// <summary>The response frame including its 4-byte size prefix, or null for none.</summary>
    public byte[]? Response { get; }

    /// <summary>True when <see cref="Response"/> was rented from <c>ArrayPool&lt;byte&gt;.Shared</c>: the sender returns it after sending.</summary>
    public bool Pooled { get; }

    /// <summary>Bytes of <see cref="Response"/> to send.</summary>
    public int Length { get; }

    /// <summary>True when the connection must be closed (after any earlier responses, and <see cref="Response"/> if any).</summary>
    public bool Close { get; }

    /// <summary>Why the connection is closed, for the one log line.</summary>
    public string? CloseReason { get; }

    /// <summary>Send <paramref name="length"/> bytes of <paramref name="frame"/> (size prefix included).</summary>
    public static DispatchResult Send(byte[] frame, int length) => new(frame, length, false, null);

    /// <summary>Send <paramref name="length"/> bytes of a frame rented from <c>ArrayPool&lt;byte&gt;.Shared</c>; the sender returns it.</summary>
    public static DispatchResult SendPooled(byte[] frame, int length) => new(frame, length, false, null, pooled: true);

    /// <summary>Send nothing (acks=0 produce).</summary>
    public static DispatchResult None => default;

    /// <summary>Close the connection, logging <paramref name="reason"/> once.</summary>
    public static DispatchResult CloseConnection(string reason) => new(null, 0, true, reason);

    /// <summary>This response, after which the connection closes, logging <paramref name="reason"/> once (a failed SASL exchange).</summary>
    public DispatchResult ThenClose(string reason) => new(Response, Length, true, reason, Pooled);
}
