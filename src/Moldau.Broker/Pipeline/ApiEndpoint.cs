using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Moldau.Protocol;

namespace Moldau.Broker;

/// <summary>A registered API bound to its handler: decodes, runs the stages and the handler, encodes.</summary>
internal abstract class ApiEndpoint(ApiRegistration registration)
{
    /// <summary>What was registered.</summary>
    public ApiRegistration Registration { get; } = registration;

    /// <summary>The API.</summary>
    public ApiKey Key => Registration.Key;

    /// <summary>The API's spec: header versions per version.</summary>
    protected ApiSpec Spec { get; } = ApiSpecs.Find((short)registration.Key) ?? throw new InvalidOperationException($"no spec for {registration.Key}");

    /// <summary>Serves one frame of this API at <paramref name="version"/> (already checked against the registration).</summary>
    public abstract ValueTask<DispatchResult> Dispatch(RequestPipeline pipeline, ReadOnlyMemory<byte> frame, short version, ConnectionSession session, CancellationToken cancellationToken);
}

/// <summary>The typed steps of <see cref="ApiEndpoint"/>: everything here is the same for every API.</summary>
internal sealed class ApiEndpoint<TRequest, TResponse>(ApiRegistration registration, IApiHandler<TRequest, TResponse> handler) : ApiEndpoint(registration)
    where TRequest : class, IKafkaMessage, new()
    where TResponse : class, IKafkaMessage
{
    /// <summary>The handler (tests reach it).</summary>
    public IApiHandler<TRequest, TResponse> Handler { get; } = handler;

    /// <inheritdoc/>
    public override ValueTask<DispatchResult> Dispatch(RequestPipeline pipeline, ReadOnlyMemory<byte> frame, short version, ConnectionSession session, CancellationToken cancellationToken)
    {
        // Header and body are read into reused objects where the handler keeps them (Produce,
        // Fetch): the hot path allocates nothing.
        var header = pipeline.Headers.Rent();
        var request = Handler.RentRequest();
        try
        {
            var reader = new KafkaReader(frame);
            header.Read(ref reader, Spec.RequestHeaderVersion(version));
            request.Read(ref reader, version);
        }
        catch (KafkaProtocolException e)
        {
            Handler.Release(request, null);
            pipeline.Headers.Return(header);
            return ValueTask.FromResult(DispatchResult.CloseConnection($"unparseable {Key} v{version} request: {e.Message}"));
        }

        session.ClientId = header.ClientId;
        var context = new RequestContext(header, session, cancellationToken) { RequestBytes = frame.Length };
        if (!Registration.Sequenced && !session.Writes.IsIdle)
        {
            // A produce request before this one still appends: this one sees what it wrote.
            return HandleAfterWritesAsync(pipeline, context, request);
        }

        return Handle(pipeline, context, request);
    }

    private async ValueTask<DispatchResult> HandleAfterWritesAsync(RequestPipeline pipeline, RequestContext context, TRequest request)
    {
        await context.Session.Writes.WhenIdleAsync().ConfigureAwait(false);
        return await Handle(pipeline, context, request).ConfigureAwait(false);
    }

    private ValueTask<DispatchResult> Handle(RequestPipeline pipeline, RequestContext context, TRequest request)
    {
        ValueTask<TResponse> pending;
        var started = pipeline.Quotas.Active ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        try
        {
            var refused = pipeline.Admit(context, Key);
            pending = refused == ErrorCode.None
                ? Handler.HandleAsync(context, request, context.CancellationToken)
                : ValueTask.FromResult(Handler.ErrorResponse(context, request, refused));
        }
        catch (Exception e) when (!IsCancellation(e, context))
        {
            pending = ValueTask.FromResult(Failed(pipeline, context, request, e));
        }
        catch
        {
            Abandon(pipeline, context, request);
            throw;
        }

        var handlerTicks = started == 0 ? 0 : System.Diagnostics.Stopwatch.GetTimestamp() - started;
        return pending.IsCompletedSuccessfully
            ? ValueTask.FromResult(Finish(pipeline, context, request, pending.Result, handlerTicks))
            : FinishAsync(pipeline, context, request, pending, handlerTicks);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<DispatchResult> FinishAsync(RequestPipeline pipeline, RequestContext context, TRequest request, ValueTask<TResponse> pending, long handlerTicks)
    {
        TResponse response;
        try
        {
            response = await pending.ConfigureAwait(false);
        }
        catch (Exception e) when (!IsCancellation(e, context))
        {
            response = Failed(pipeline, context, request, e);
        }
        catch
        {
            Abandon(pipeline, context, request);
            throw;
        }

        return Finish(pipeline, context, request, response, handlerTicks);
    }

    private DispatchResult Finish(RequestPipeline pipeline, in RequestContext context, TRequest request, TResponse response, long handlerTicks)
    {
        try
        {
            if (pipeline.Quotas.Active)
            {
                Throttle(pipeline, context, response, handlerTicks);
            }

            var result = response is IResponseDirective directive
                ? directive.CloseReason is { } reason ? DispatchResult.CloseConnection(reason)
                : directive.Silent ? DispatchResult.None
                : directive.CloseAfterReason is { } after ? Encode(context, directive.Body ?? response).ThenClose(after)
                : Encode(context, response)
                : Encode(context, response);
            pipeline.Responded(context, Key, result.Length);
            if (pipeline.Metrics is { } metrics && Metrics.ErrorWalker<TResponse>.Walk is { } errors)
            {
                errors(response, metrics.ErrorsOf(Key));
            }

            return result;
        }
        finally
        {
            Handler.Release(request, response);
            pipeline.Headers.Return(context.Header);
        }
    }

    // A client over a quota: the throttle time goes in the response (the larger of the quotas' and
    // any the handler set, a controller mutation quota's) and the connection is muted that long.
    private void Throttle(RequestPipeline pipeline, in RequestContext context, TResponse response, long handlerTicks)
    {
        var throttle = Math.Max(pipeline.Quotas.OnResponse(context, Key, response, context.RequestBytes, handlerTicks), Moldau.Broker.Quotas.ThrottleField<TResponse>.Get?.Invoke(response) ?? 0);
        if (throttle > 0)
        {
            Moldau.Broker.Quotas.ThrottleField<TResponse>.Set?.Invoke(response, throttle);
            context.Session.Throttle(throttle);
            pipeline.Metrics?.Throttled(Key, throttle);
        }
    }

    private DispatchResult Encode(in RequestContext context, IKafkaMessage response) =>
        ResponseWriter.Encode(context.Header.CorrelationId, Spec.ResponseHeaderVersion(context.Version), response, context.Version);

    // Kafka answers a request whose handling failed with the API's error response; the
    // connection stays open. One line, not a stack trace per request.
    private TResponse Failed(RequestPipeline pipeline, in RequestContext context, TRequest request, Exception e)
    {
        pipeline.Log.LogError(
            "{Api} v{Version} request {CorrelationId} on connection {Connection} failed, answering UNKNOWN_SERVER_ERROR: {Type}: {Message} {Where}",
            Key,
            context.Version,
            context.Header.CorrelationId,
            context.Session.Id,
            e.GetType().Name,
            e.Message,
            e.StackTrace?.Split('\n', 2)[0].Trim());
        return Handler.ErrorResponse(context, request, ErrorCode.UnknownServerError);
    }

    private void Abandon(RequestPipeline pipeline, in RequestContext context, TRequest request)
    {
        Handler.Release(request, null);
        pipeline.Headers.Return(context.Header);
    }

    private static bool IsCancellation(Exception e, in RequestContext context) =>
        e is OperationCanceledException && context.CancellationToken.IsCancellationRequested;
}
