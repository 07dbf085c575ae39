using Moldau.Broker.Configuration;

namespace Moldau.Broker.Topics;

/// <summary>
/// The topic config checks under their former name; the definitions themselves are
/// <see cref="TopicConfigDefinitions"/> and <see cref="BrokerConfigDefinitions"/>.
/// </summary>
internal static class ConfigDefaults
{
    /// <summary>See <see cref="TopicConfigDefinitions.Validate"/>.</summary>
    public static string? ValidateTopic(string name, string? value) => TopicConfigDefinitions.Validate(name, value);
}
