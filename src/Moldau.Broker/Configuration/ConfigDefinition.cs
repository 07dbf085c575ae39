using System.Globalization;

namespace Moldau.Broker.Configuration;

/// <summary>Kafka's ConfigType values, as DescribeConfigs (v3+) reports them.</summary>
internal enum ConfigType : sbyte
{
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

/// <summary>Kafka's ConfigSource values: where the value DescribeConfigs reports comes from.</summary>
internal enum ConfigSource : sbyte
{
    Unknown = 0,
    DynamicTopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
}

/// <summary>What Moldau does with a config, decided once per key (the table test walks these).</summary>
internal enum ConfigSupport
{
    /// <summary>The value is read and acted on (and, when dynamic, reaches open logs at once).</summary>
    Acted,

    /// <summary>Only the default is accepted; any other value is refused with INVALID_CONFIG (Moldau can't honour it).</summary>
    DefaultOnly,

    /// <summary>Reported read-only: set at start-up (server.properties) or not at all.</summary>
    ReadOnly,
}

/// <summary>A broker key that supplies a topic config's default, with the factor that turns its unit into the topic key's (hours to ms).</summary>
/// <param name="Name">The broker key.</param>
/// <param name="Factor">Multiplier from the broker key's unit to the topic key's.</param>
internal sealed record ConfigSynonym(string Name, long Factor = 1);

/// <summary>
/// One config key, as Kafka's <c>ConfigDef.ConfigKey</c> defines it: its type, default, the values
/// it accepts, its documentation, the broker keys that set it (for a topic key) and whether it can
/// change while the broker runs.
/// </summary>
internal sealed record ConfigDefinition
{
    /// <summary>The key.</summary>
    public required string Name { get; init; }

    /// <summary>The value's type.</summary>
    public required ConfigType Type { get; init; }

    /// <summary>The default as text (Kafka's), or null for none.</summary>
    public required string? Default { get; init; }

    /// <summary>Inclusive lower bound for numbers.</summary>
    public double? Min { get; init; }

    /// <summary>Inclusive upper bound for numbers.</summary>
    public double? Max { get; init; }

    /// <summary>The values a string (or each element of a list) may take, case-sensitive.</summary>
    public IReadOnlyList<string>? OneOf { get; init; }

    /// <summary>What the key means, in Moldau's words.</summary>
    public required string Documentation { get; init; }

    /// <summary>For a topic key: the broker keys that set its default, highest precedence first.</summary>
    public IReadOnlyList<ConfigSynonym> Synonyms { get; init; } = [];

    /// <summary>True when it can change at run time (AlterConfigs); false: read-only, set at start-up.</summary>
    public bool Dynamic { get; init; }

    /// <summary>What Moldau does with the value.</summary>
    public ConfigSupport Support { get; init; } = ConfigSupport.Acted;

    /// <summary>Why only the default is accepted (for <see cref="ConfigSupport.DefaultOnly"/>), shown in the refusal.</summary>
    public string? Refusal { get; init; }

    /// <summary>True when the value is reported read-only.</summary>
    public bool ReadOnly => !Dynamic || Support == ConfigSupport.ReadOnly;

    /// <summary>
    /// Checks a value as Kafka's ConfigDef parses and validates it; null when it is fine, else the
    /// reason (Kafka's words), without the "Invalid value ... for configuration ..." prefix.
    /// </summary>
    public string? Problem(string value)
    {
        var trimmed = value.Trim();
        switch (Type)
        {
            case ConfigType.Boolean:
                if (!trimmed.Equals("true", StringComparison.OrdinalIgnoreCase) && !trimmed.Equals("false", StringComparison.OrdinalIgnoreCase))
                {
                    return "Expected value to be either true or false";
                }

                break;
            case ConfigType.Int or ConfigType.Short or ConfigType.Long or ConfigType.Double:
                if (!TryParseNumber(trimmed, out var number))
                {
                    return $"Not a number of type {Type.ToString().ToUpperInvariant()}";
                }

                if (Min is { } min && number < min)
                {
                    return $"Value must be at least {Format(min)}";
                }

                if (Max is { } max && number > max)
                {
                    return $"Value must be no more than {Format(max)}";
                }

                break;
            case ConfigType.List when OneOf is { } allowed:
                foreach (var item in trimmed.Split(',', StringSplitOptions.TrimEntries))
                {
                    if (!allowed.Contains(item, StringComparer.Ordinal))
                    {
                        return $"String must be one of: {string.Join(", ", allowed)}";
                    }
                }

                break;
            case ConfigType.String when OneOf is { } allowed:
                if (!allowed.Contains(trimmed, StringComparer.Ordinal))
                {
                    return $"String must be one of: {string.Join(", ", allowed)}";
                }

                break;
        }

        if (Support == ConfigSupport.DefaultOnly && !SameAsDefault(trimmed))
        {
            return Refusal ?? "Moldau accepts only the default";
        }

        return null;
    }

    /// <summary>The full INVALID_CONFIG message for <paramref name="value"/>, or null when it is valid.</summary>
    public string? Validate(string value) =>
        Problem(value) is { } problem ? $"Invalid value {value} for configuration {Name}: {problem}" : null;

    private bool SameAsDefault(string value) => Type switch
    {
        ConfigType.Boolean => string.Equals(value, Default, StringComparison.OrdinalIgnoreCase),
        ConfigType.Int or ConfigType.Short or ConfigType.Long or ConfigType.Double =>
            Default is not null && TryParseNumber(value, out var a) && TryParseNumber(Default, out var b) && a == b,
        _ => string.Equals(value, Default, StringComparison.Ordinal),
    };

    private bool TryParseNumber(string value, out double number)
    {
        const NumberStyles integer = NumberStyles.AllowLeadingSign;
        number = 0;
        switch (Type)
        {
            case ConfigType.Short when short.TryParse(value, integer, CultureInfo.InvariantCulture, out var s):
                number = s;
                return true;
            case ConfigType.Int when int.TryParse(value, integer, CultureInfo.InvariantCulture, out var i):
                number = i;
                return true;
            case ConfigType.Long when long.TryParse(value, integer, CultureInfo.InvariantCulture, out var l):
                number = l;
                return true;
            case ConfigType.Double when double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d):
                number = d;
                return true;
            default:
                return false;
        }
    }

    private static string Format(double bound) => bound.ToString(bound == Math.Floor(bound) ? "F0" : "R", CultureInfo.InvariantCulture);
}
