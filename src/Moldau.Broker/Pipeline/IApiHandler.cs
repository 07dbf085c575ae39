using Moldau.Protocol;

namespace Moldau.Broker;

/// <summary>
/// The handler of one API: turns a decoded request into its response. One class per API in
/// Handlers/, registered once in <see cref="ApiRegistry"/>. It never sees sockets or bytes: the
/// pipeline decodes, checks, calls it and encodes.
/// </summary>
/// <typeparam name="TRequest">The request body (a generated message).</typeparam>
/// <typeparam name="TResponse">What is encoded as the response body: the generated response, or a pooled wrapper around it.</typeparam>
/// <remarks>
/// Ordering contract: handlers are called in the order a connection's requests arrived, and what
/// a handler changes before its first <c>await</c> is seen by every later request. A handler that
/// must wait before changing state takes its place first, synchronously (Produce takes a turn per
/// partition from <see cref="ConnectionSession.Writes"/>). Protocol errors belong in the response;
/// an exception becomes <see cref="ErrorResponse"/> with UNKNOWN_SERVER_ERROR.
/// </remarks>
internal interface IApiHandler<TRequest, TResponse>
    where TRequest : class, IKafkaMessage, new()
    where TResponse : class, IKafkaMessage
{
    /// <summary>Handles <paramref name="request"/>; the response is encoded once the task completes.</summary>
    /// <param name="context">The request header and the connection's session.</param>
    /// <param name="request">The decoded body; valid until the response is encoded.</param>
    /// <param name="cancellationToken">Cancelled when the connection or the broker goes away.</param>
    ValueTask<TResponse> HandleAsync(RequestContext context, TRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// This API's response to <paramref name="request"/> failing as a whole with
    /// <paramref name="error"/>: the error on every item the request names (each topic, partition,
    /// group, resource), as Kafka's <c>AbstractRequest.getErrorResponse</c> builds it. Used when the
    /// handler threw, and by stages (authorization, quotas) that refuse a request.
    /// </summary>
    TResponse ErrorResponse(RequestContext context, TRequest request, ErrorCode error);

    /// <summary>An object to decode the next request into: a new one, unless the handler keeps them for reuse.</summary>
    TRequest RentRequest() => new();

    /// <summary>
    /// Called once the response is encoded (or dropped): a handler that reuses its request and
    /// response objects takes them back here. <paramref name="response"/> is null when there was none.
    /// </summary>
    void Release(TRequest request, TResponse? response)
    {
    }
}

/// <summary>A response that may ask for no reply at all (acks=0 produce) or for the connection to close.</summary>
internal interface IResponseDirective
{
    /// <summary>True: send nothing back.</summary>
    bool Silent { get; }

    /// <summary>Non-null: send nothing and close the connection, logging this once.</summary>
    string? CloseReason { get; }

    /// <summary>Non-null: send this response, then close the connection, logging this once (Kafka's failed SASL exchange).</summary>
    string? CloseAfterReason => null;

    /// <summary>The message to encode in place of the directive (null: the directive is the message).</summary>
    IKafkaMessage? Body => null;
}

/// <summary>
/// A step every request passes through before its handler, in a small ordered list: where
/// authorization, quotas and metrics hook in. None are installed yet.
/// </summary>
internal interface IRequestStage
{
    /// <summary>
    /// Runs synchronously, in arrival order, before the handler. <see cref="ErrorCode.None"/> lets
    /// the request through; any other code answers it with that API's error response.
    /// </summary>
    ErrorCode OnRequest(in RequestContext context, ApiKey api);

    /// <summary>After the response is encoded: its size (0 for none), for quotas and metrics.</summary>
    void OnResponse(in RequestContext context, ApiKey api, int responseBytes);
}
