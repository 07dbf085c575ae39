namespace Moldau.Security.Tests;

public sealed class SecurityProtocolTests
{
    [Theory]
    [InlineData("PLAINTEXT", false, false)]
    [InlineData("SSL", true, false)]
    [InlineData("SASL_PLAINTEXT", false, true)]
    [InlineData("SASL_SSL", true, true)]
    public void Protocols_say_what_they_wrap(string protocol, bool tls, bool sasl)
    {
        Assert.Equal(tls, SecurityProtocol.UsesTls(protocol));
        Assert.Equal(sasl, SecurityProtocol.UsesSasl(protocol));
    }
}
