using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;

namespace Moldau.Broker;

/// <summary>What handlers are made from when the broker starts.</summary>
/// <param name="State">Options, topics, cluster id, clock, log, authorizer.</param>
/// <param name="Groups">The group coordinator.</param>
/// <param name="EnsureOffsetsTopic">Creates __consumer_offsets if it is missing; false when it can't be.</param>
internal sealed record HandlerServices(BrokerState State, GroupCoordinator Groups, Func<bool> EnsureOffsetsTopic)
{
    /// <summary>Who may do what.</summary>
    public IAuthorizer Authorizer => State.Authorizer;
}

/// <summary>
/// One API as registered in <see cref="ApiRegistry"/>: its key, the versions served, and how its
/// handler is made. ApiVersions advertises exactly the registrations.
/// </summary>
internal abstract class ApiRegistration(ApiKey key, short minAdvertised, short maxVersion, short minServed, bool sequenced)
{
    /// <summary>The API.</summary>
    public ApiKey Key { get; } = key;

    /// <summary>Lowest version advertised in ApiVersions.</summary>
    public short MinAdvertised { get; } = minAdvertised;

    /// <summary>Highest version served.</summary>
    public short MaxVersion { get; } = maxVersion;

    /// <summary>
    /// Lowest version the handler serves; between <see cref="MinAdvertised"/> and it the handler
    /// answers UNSUPPORTED_VERSION itself (as Kafka 4 does for Produce v0-v2).
    /// </summary>
    public short MinServed { get; } = minServed;

    /// <summary>
    /// True when the handler orders its own writes per partition through
    /// <see cref="ConnectionSession.Writes"/> (Produce); every other request first waits until
    /// the writes dispatched before it are done.
    /// </summary>
    public bool Sequenced { get; } = sequenced;

    /// <summary>The handler made for one broker, ready to serve.</summary>
    public abstract ApiEndpoint Bind(HandlerServices services);
}

/// <summary>A registration whose handler takes <typeparamref name="TRequest"/> and answers <typeparamref name="TResponse"/>.</summary>
internal sealed class ApiRegistration<TRequest, TResponse>(
    ApiKey key, short minAdvertised, short maxVersion, short minServed, bool sequenced, Func<HandlerServices, IApiHandler<TRequest, TResponse>> create)
    : ApiRegistration(key, minAdvertised, maxVersion, minServed, sequenced)
    where TRequest : class, IKafkaMessage, new()
    where TResponse : class, IKafkaMessage
{
    /// <inheritdoc/>
    public override ApiEndpoint Bind(HandlerServices services) => new ApiEndpoint<TRequest, TResponse>(this, create(services));
}
