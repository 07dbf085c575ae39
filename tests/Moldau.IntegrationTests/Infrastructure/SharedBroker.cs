namespace Moldau.IntegrationTests.Infrastructure;

/// <summary>One broker process shared by the tests of a collection (each test uses its own topics).</summary>
public sealed class SharedBroker : IAsyncLifetime
{
    private BrokerProcess? _broker;

    /// <summary>The running broker.</summary>
    public BrokerProcess Broker => _broker ?? throw new InvalidOperationException("not started");

    /// <inheritdoc/>
    public async Task InitializeAsync() =>
        _broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["num.partitions"] = "1", ["group.initial.rebalance.delay.ms"] = "0" });

    /// <inheritdoc/>
    public async Task DisposeAsync()
    {
        if (_broker is not null)
        {
            await _broker.DisposeAsync();
        }
    }
}

/// <summary>Tests that share one broker process.</summary>
[CollectionDefinition(Name)]
public sealed class BrokerCollection : ICollectionFixture<SharedBroker>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "shared broker";
}
