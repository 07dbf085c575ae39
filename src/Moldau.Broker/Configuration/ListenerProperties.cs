namespace Moldau.Broker.Configuration;

/// <summary>
/// Reads a server.properties key as Kafka resolves it for one listener: the listener's own
/// <c>listener.name.&lt;listener&gt;.&lt;key&gt;</c> first (the listener name in lower case), then the
/// plain <c>&lt;key&gt;</c>. SASL keys scoped to a mechanism
/// (<c>listener.name.&lt;listener&gt;.&lt;mechanism&gt;.sasl.jaas.config</c>) are read with
/// <see cref="GetForMechanism"/>.
/// </summary>
public sealed class ListenerProperties
{
    private readonly IReadOnlyDictionary<string, string> _props;
    private readonly string _prefix;

    /// <summary>The keys of <paramref name="props"/> as seen by the listener <paramref name="listenerName"/>.</summary>
    public ListenerProperties(IReadOnlyDictionary<string, string> props, string listenerName)
    {
        _props = props;
        ListenerName = listenerName;
        _prefix = "listener.name." + listenerName.ToLowerInvariant() + ".";
    }

    /// <summary>The listener's name, as in <c>listeners</c>.</summary>
    public string ListenerName { get; }

    /// <summary>The listener's value of <paramref name="key"/>, else the broker-wide one, else null (trimmed).</summary>
    public string? Get(string key) =>
        _props.TryGetValue(_prefix + key, out var own) ? own.Trim()
        : _props.TryGetValue(key, out var shared) ? shared.Trim()
        : null;

    /// <summary>
    /// The value of <paramref name="key"/> for one SASL mechanism on this listener:
    /// <c>listener.name.&lt;l&gt;.&lt;mechanism&gt;.&lt;key&gt;</c> (mechanism in lower case), then
    /// <see cref="Get"/>.
    /// </summary>
    public string? GetForMechanism(string mechanism, string key) =>
        _props.TryGetValue(_prefix + mechanism.ToLowerInvariant() + "." + key, out var own) ? own.Trim() : Get(key);
}
