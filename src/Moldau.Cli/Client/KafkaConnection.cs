using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Cli.Client;

/// <summary>
/// One connection to one broker: TCP (TLS when the settings say so), ApiVersions, SASL, then one
/// request at a time encoded with Moldau's generated messages. Versions are the lower of what the
/// CLI asks for and what the broker advertises, so it works against Kafka as against Moldau.
/// </summary>
public sealed class KafkaConnection : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly Stream _stream;
    private readonly ClientSettings _settings;
    private readonly Dictionary<short, (short Min, short Max)> _versions = [];
    private readonly byte[] _sizeBuffer = new byte[4];
    private int _correlationId;

    private KafkaConnection(TcpClient tcp, Stream stream, ClientSettings settings, string endpoint)
    {
        _tcp = tcp;
        _stream = stream;
        _settings = settings;
        Endpoint = endpoint;
    }

    /// <summary>host:port this connection goes to.</summary>
    public string Endpoint { get; }

    /// <summary>Connects, negotiates versions and authenticates.</summary>
    public static async Task<KafkaConnection> ConnectAsync(string host, int port, ClientSettings settings, CancellationToken cancellationToken)
    {
        var endpoint = $"{host}:{port}";
        var tcp = new TcpClient { NoDelay = true };
        Stream stream;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(settings.RequestTimeout);
            await tcp.ConnectAsync(host, port, timeout.Token);
            stream = tcp.GetStream();
            if (settings.UsesTls)
            {
                var ssl = new SslStream(stream, false);
                var options = new SslClientAuthenticationOptions
                {
                    TargetHost = host,
                    ClientCertificates = settings.ClientCertificate is null ? null : [settings.ClientCertificate],
                    RemoteCertificateValidationCallback = (_, certificate, chain, errors) => Validate(settings, certificate, chain, errors),
                };
                await ssl.AuthenticateAsClientAsync(options, timeout.Token);
                stream = ssl;
            }
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
            tcp.Dispose();
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            var why = e is OperationCanceledException ? $"no connection within {settings.RequestTimeout.TotalSeconds:0} s" : e.Message;
            throw new CliException(ExitCodes.Unreachable, $"cannot connect to {endpoint}: {why}");
        }

        var connection = new KafkaConnection(tcp, stream, settings, endpoint);
        try
        {
            await connection.NegotiateAsync(cancellationToken);
            if (settings.UsesSasl)
            {
                await connection.AuthenticateAsync(cancellationToken);
            }
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }

        return connection;
    }

    /// <summary>The version to use for <paramref name="key"/>: at most <paramref name="max"/>, at least <paramref name="min"/>.</summary>
    public short Version(ApiKey key, short max, short min = 0)
    {
        if (!_versions.TryGetValue((short)key, out var range) || range.Max < min || range.Min > max)
        {
            throw new CliException(ExitCodes.Failed, $"{Endpoint} does not support {key} v{min}-{max}");
        }

        return Math.Min(max, range.Max);
    }

    /// <summary>True when the broker serves <paramref name="key"/> at <paramref name="version"/> or above.</summary>
    public bool Supports(ApiKey key, short version = 0) => _versions.TryGetValue((short)key, out var r) && r.Max >= version;

    /// <summary>Sends <paramref name="request"/> at <paramref name="version"/> and reads the response.</summary>
    public async Task<TResponse> SendAsync<TResponse>(ApiKey key, short version, IKafkaMessage request, CancellationToken cancellationToken)
        where TResponse : IKafkaMessage, new()
    {
        var spec = ApiSpecs.Find((short)key)!;
        var correlationId = ++_correlationId;
        var header = new RequestHeader { ApiKey = (short)key, ApiVersion = version, CorrelationId = correlationId, ClientId = "moldau-cli" };
        var headerVersion = spec.RequestHeaderVersion(version);
        var size = header.Size(headerVersion) + request.Size(version);
        var frame = new byte[4 + size];
        var writer = new KafkaWriter(frame);
        writer.WriteInt32(size);
        header.Write(ref writer, headerVersion);
        request.Write(ref writer, version);
        byte[] body;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_settings.RequestTimeout + (key == ApiKey.Fetch ? TimeSpan.FromSeconds(5) : TimeSpan.Zero));
            await _stream.WriteAsync(frame, timeout.Token);
            await _stream.ReadExactlyAsync(_sizeBuffer, timeout.Token);
            body = new byte[BinaryPrimitives.ReadInt32BigEndian(_sizeBuffer)];
            await _stream.ReadExactlyAsync(body, timeout.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or EndOfStreamException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            var why = e is OperationCanceledException ? $"no answer within {_settings.RequestTimeout.TotalSeconds:0} s" : "the connection was closed";
            throw new CliException(ExitCodes.Unreachable, $"{key} to {Endpoint}: {why}");
        }

        var reader = new KafkaReader(body);
        var got = ResponseHeader.Read(ref reader, spec.ResponseHeaderVersion(version));
        if (got != correlationId)
        {
            throw new CliException(ExitCodes.Failed, $"{Endpoint} answered correlation id {got}, expected {correlationId}");
        }

        var response = new TResponse();
        response.Read(ref reader, version);
        return response;
    }

    private async Task NegotiateAsync(CancellationToken cancellationToken)
    {
        // ApiVersions v3 first; a broker that does not know v3 answers with a v0 body listing what it serves.
        _versions[(short)ApiKey.ApiVersions] = (0, 3);
        var request = new ApiVersionsRequest { ClientSoftwareName = "moldau-cli", ClientSoftwareVersion = CliApp.Version.Split('+')[0] };
        var response = await SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3, request, cancellationToken);
        if (response.ErrorCode == (short)ErrorCode.UnsupportedVersion)
        {
            response = await SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 0, new ApiVersionsRequest(), cancellationToken);
        }

        CliException.ThrowIf(response.ErrorCode, $"ApiVersions to {Endpoint}");
        foreach (var k in response.ApiKeys)
        {
            _versions[k.ApiKey] = (k.MinVersion, k.MaxVersion);
        }
    }

    private async Task AuthenticateAsync(CancellationToken cancellationToken)
    {
        var handshake = await SendAsync<SaslHandshakeResponse>(
            ApiKey.SaslHandshake, Version(ApiKey.SaslHandshake, 1, 1), new SaslHandshakeRequest { Mechanism = _settings.SaslMechanism }, cancellationToken);
        if (handshake.ErrorCode != 0)
        {
            throw new CliException(ExitCodes.AuthenticationFailed, $"{Endpoint} does not accept SASL mechanism {_settings.SaslMechanism} (it offers {string.Join(", ", handshake.Mechanisms)})");
        }

        var user = _settings.Username!;
        var password = _settings.Password!;
        if (_settings.SaslMechanism == "PLAIN")
        {
            await SaslStepAsync(Encoding.UTF8.GetBytes($"\0{user}\0{password}"), cancellationToken);
            return;
        }

        var hash = _settings.SaslMechanism == "SCRAM-SHA-512" ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256;
        var nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
        var clientFirstBare = $"n={user.Replace("=", "=3D").Replace(",", "=2C")},r={nonce}";
        var serverFirst = Encoding.UTF8.GetString(await SaslStepAsync(Encoding.UTF8.GetBytes("n,," + clientFirstBare), cancellationToken));
        var fields = serverFirst.Split(',').Where(f => f.Length > 2 && f[1] == '=').ToDictionary(f => f[0], f => f[2..]);
        if (!fields.TryGetValue('r', out var fullNonce) || !fullNonce.StartsWith(nonce, StringComparison.Ordinal)
            || !fields.TryGetValue('s', out var salt) || !fields.TryGetValue('i', out var iterationsText) || !int.TryParse(iterationsText, out var iterations))
        {
            throw new CliException(ExitCodes.AuthenticationFailed, $"{Endpoint}: malformed SCRAM server-first message");
        }

        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), Convert.FromBase64String(salt), iterations, hash, hash == HashAlgorithmName.SHA512 ? 64 : 32);
        var clientKey = Hmac(hash, salted, "Client Key"u8.ToArray());
        var storedKey = hash == HashAlgorithmName.SHA512 ? SHA512.HashData(clientKey) : SHA256.HashData(clientKey);
        var withoutProof = $"c=biws,r={fullNonce}";
        var authMessage = Encoding.UTF8.GetBytes($"{clientFirstBare},{serverFirst},{withoutProof}");
        var signature = Hmac(hash, storedKey, authMessage);
        var proof = new byte[clientKey.Length];
        for (var i = 0; i < proof.Length; i++)
        {
            proof[i] = (byte)(clientKey[i] ^ signature[i]);
        }

        var serverFinal = Encoding.UTF8.GetString(await SaslStepAsync(Encoding.UTF8.GetBytes($"{withoutProof},p={Convert.ToBase64String(proof)}"), cancellationToken));
        var serverSignature = Hmac(hash, Hmac(hash, salted, "Server Key"u8.ToArray()), authMessage);
        if (serverFinal != "v=" + Convert.ToBase64String(serverSignature))
        {
            throw new CliException(ExitCodes.AuthenticationFailed, $"{Endpoint}: the server's SCRAM signature does not match");
        }
    }

    private async Task<byte[]> SaslStepAsync(byte[] token, CancellationToken cancellationToken)
    {
        var response = await SendAsync<SaslAuthenticateResponse>(
            ApiKey.SaslAuthenticate, Version(ApiKey.SaslAuthenticate, 2), new SaslAuthenticateRequest { AuthBytes = token }, cancellationToken);
        if (response.ErrorCode != 0)
        {
            throw new CliException(ExitCodes.AuthenticationFailed, $"authentication to {Endpoint} failed: {Names.Of((ErrorCode)response.ErrorCode)} {response.ErrorMessage}".TrimEnd());
        }

        return response.AuthBytes;
    }

    private static byte[] Hmac(HashAlgorithmName hash, byte[] key, byte[] data) =>
        hash == HashAlgorithmName.SHA512 ? HMACSHA512.HashData(key, data) : HMACSHA256.HashData(key, data);

    private static bool Validate(ClientSettings settings, System.Security.Cryptography.X509Certificates.X509Certificate? certificate, System.Security.Cryptography.X509Certificates.X509Chain? chain, SslPolicyErrors errors)
    {
        if (!settings.VerifyHostname)
        {
            errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
        }

        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is null || settings.TrustedCas.Count == 0)
        {
            return false;
        }

        // Trust the CAs from ssl.ca.location / ssl.truststore.location.
        using var custom = new System.Security.Cryptography.X509Certificates.X509Chain();
        custom.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(settings.TrustedCas);
        custom.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
        return custom.Build(new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate));
    }

    /// <summary>Closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _tcp.Dispose();
    }
}
