namespace Moldau.Server.Configuration;

/// <summary>A configuration the broker can't start with; the message names the key and the value.</summary>
internal sealed class ConfigException(string message) : Exception(message);
