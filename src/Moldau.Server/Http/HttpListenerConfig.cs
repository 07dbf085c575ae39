using System.Globalization;
using System.Net;
using Moldau.Server.Configuration;

namespace Moldau.Server.Http;

/// <summary>One address of moldau.http.listeners: <c>http://host:port</c>.</summary>
internal sealed record HttpListenerConfig(string Host, int Port)
{
    /// <summary>The address suggested in config/server.properties: loopback, Redpanda's admin port. Unset, there is no HTTP listener (docs/metrics.md says why).</summary>
    public const string Suggested = "http://127.0.0.1:9644";

    /// <summary>Where to bind: an empty host or 0.0.0.0 is every IPv4 interface, [::] every interface.</summary>
    public IPEndPoint EndPoint => new(
        Host is "" or "0.0.0.0" ? IPAddress.Any : IPAddress.TryParse(Host.Trim('[', ']'), out var a) ? a : Host == "localhost" ? IPAddress.Loopback : Dns.GetHostAddresses(Host)[0],
        Port);

    /// <summary>Parses moldau.http.listeners: comma-separated http://host:port; unset, empty or "none": no HTTP listener.</summary>
    public static IReadOnlyList<HttpListenerConfig> Parse(string? value)
    {
        value = value?.Trim() ?? string.Empty;
        if (value.Length == 0 || value.Equals("none", StringComparison.OrdinalIgnoreCase))
        {
            return [];
        }

        var result = new List<HttpListenerConfig>();
        foreach (var item in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!item.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
            {
                throw new ConfigException($"moldau.http.listeners: '{item}' is not http://host:port (https is not served; put a proxy in front)");
            }

            var rest = item["http://".Length..].TrimEnd('/');
            var colon = rest.LastIndexOf(':');
            if (colon < 0 || !int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
            {
                throw new ConfigException($"moldau.http.listeners: '{item}' has no port");
            }

            result.Add(new HttpListenerConfig(rest[..colon], port));
        }

        return result;
    }

    /// <inheritdoc/>
    public override string ToString() => $"http://{(Host.Contains(':') && !Host.StartsWith('[') ? $"[{Host}]" : Host)}:{Port}";
}
