namespace Moldau.Broker.Topics;

/// <summary>Kafka's rules for topic names.</summary>
internal static class TopicNames
{
    /// <summary>Kafka's limit: 249 characters, so that "name-partition" fits a file name.</summary>
    public const int MaxLength = 249;

    /// <summary>True when <paramref name="name"/> is a legal topic name: 1-249 of [a-zA-Z0-9._-], not "." or "..".</summary>
    public static bool IsValid(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxLength || name is "." or "..")
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }
}
