using Moldau.Server.Configuration;

namespace Moldau.Server.Tests;

/// <summary>server.properties inputs the fuzzer found (tests/Moldau.Fuzz/corpus/properties/), as plain regression tests.</summary>
public sealed class ConfigurationFuzzFindingsTests
{
    [Theory]
    [InlineData("log.dirs=/var/lib/moldau\\u0000x")]
    [InlineData("log.dir=a,\0")]
    public void A_log_dir_with_a_nul_is_a_config_error(string text)
    {
        // Path.GetFullPath threw ArgumentException ("Null character in path"), which escaped start-up.
        var e = Assert.Throws<ConfigException>(() => ServerConfig.From(PropertiesFile.Parse(text)));
        Assert.Contains("log.dirs", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("\0", e.Message, StringComparison.Ordinal);
    }
}
