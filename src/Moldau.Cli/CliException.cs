using Moldau.Protocol;

namespace Moldau.Cli;

/// <summary>
/// What the CLI's exit code says: scripts test it without reading the message.
/// </summary>
public static class ExitCodes
{
    /// <summary>Done.</summary>
    public const int Ok = 0;

    /// <summary>The broker answered with an error not covered below, or something else failed.</summary>
    public const int Failed = 1;

    /// <summary>The command line or the --config file is wrong.</summary>
    public const int Usage = 2;

    /// <summary>No broker could be reached (connection refused, timeout, TLS handshake).</summary>
    public const int Unreachable = 3;

    /// <summary>SASL authentication failed.</summary>
    public const int AuthenticationFailed = 4;

    /// <summary>The principal is not authorized (an ACL denied it).</summary>
    public const int NotAuthorized = 5;

    /// <summary>The topic, group, user or resource named does not exist.</summary>
    public const int NotFound = 6;

    /// <summary>The topic (or other resource) to create exists already.</summary>
    public const int AlreadyExists = 7;

    /// <summary>Interrupted (Ctrl-C), as shells report SIGINT.</summary>
    public const int Interrupted = 130;

    /// <summary>The exit code for a Kafka error code.</summary>
    public static int For(ErrorCode code) => code switch
    {
        ErrorCode.None => Ok,
        ErrorCode.UnknownTopicOrPartition or ErrorCode.UnknownTopicId or ErrorCode.GroupIdNotFound or ErrorCode.ResourceNotFound => NotFound,
        ErrorCode.TopicAlreadyExists => AlreadyExists,
        ErrorCode.TopicAuthorizationFailed or ErrorCode.GroupAuthorizationFailed or ErrorCode.ClusterAuthorizationFailed
            or ErrorCode.TransactionalIdAuthorizationFailed => NotAuthorized,
        ErrorCode.SaslAuthenticationFailed or ErrorCode.UnsupportedSaslMechanism or ErrorCode.IllegalSaslState => AuthenticationFailed,
        _ => Failed,
    };
}

/// <summary>A failure the CLI reports with one line and an exit code.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    /// <summary>The process exit code (<see cref="ExitCodes"/>).</summary>
    public int ExitCode { get; } = exitCode;

    /// <summary>A Kafka error from a response, with what it was about.</summary>
    public static CliException From(ErrorCode code, string what, string? message = null) =>
        new(ExitCodes.For(code), $"{what}: {Names.Of(code)}{(string.IsNullOrEmpty(message) ? string.Empty : $" ({message})")}");

    /// <summary>Throws when <paramref name="code"/> is an error.</summary>
    public static void ThrowIf(short code, string what, string? message = null)
    {
        if (code != 0)
        {
            throw From((ErrorCode)code, what, message);
        }
    }
}

/// <summary>Kafka's names for error codes (UNKNOWN_TOPIC_OR_PARTITION), as its tools print them.</summary>
public static class Names
{
    /// <summary>UPPER_SNAKE_CASE of the enum name.</summary>
    public static string Of(ErrorCode code)
    {
        var name = code.ToString();
        if (int.TryParse(name, out _))
        {
            return $"error {name}";
        }

        var sb = new System.Text.StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]))
            {
                sb.Append('_');
            }

            sb.Append(char.ToUpperInvariant(name[i]));
        }

        return sb.ToString();
    }
}
