using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Moldau.Server.Network;

namespace Moldau.Server.Tests;

/// <summary>
/// The socket stream under a TLS connection's SslStream, over real TCP with a real TLS client:
/// bytes arrive whole and in order both ways; a large request is received in few socket reads
/// (the low-water mark) and a large response leaves in few sends; the mark never keeps a reader
/// waiting for bytes that do not come; an idle connection holds no receive buffer.
/// </summary>
public sealed class TlsSocketStreamTests : IAsyncLifetime
{
    private static readonly X509Certificate2 Certificate = MakeCertificate();

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private TcpClient _client = null!;
    private SslStream _clientTls = null!;
    private TlsSocketStream _socket = null!;
    private SslStream _serverTls = null!;

    public async Task InitializeAsync()
    {
        _listener.Start();
        _client = new TcpClient { NoDelay = true };
        var connect = _client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)_listener.LocalEndpoint).Port);
        var accepted = await _listener.AcceptSocketAsync();
        await connect;
        _socket = new TlsSocketStream(new NetworkStream(accepted, ownsSocket: true));
        _serverTls = new SslStream(_socket, leaveInnerStreamOpen: false);
        _clientTls = new SslStream(_client.GetStream(), leaveInnerStreamOpen: false, (_, _, _, _) => true);
        await Task.WhenAll(
            _serverTls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = Certificate, EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls13 }),
            _clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls13 })).WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        await _clientTls.DisposeAsync();
        await _serverTls.DisposeAsync();
        _client.Dispose();
        _listener.Dispose();
    }

    [Fact]
    public async Task A_large_request_arrives_whole_in_few_socket_reads()
    {
        var sent = RandomNumberGenerator.GetBytes(8 * 1024 * 1024);
        var writing = Task.Run(async () =>
        {
            // As a client writes a large request: one TLS record per 16 KiB, each its own send.
            for (var at = 0; at < sent.Length; at += 16 * 1024)
            {
                await _clientTls.WriteAsync(sent.AsMemory(at, 16 * 1024));
            }
        });

        var received = await ReadWholeAsync(sent.Length);
        await writing.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(received.AsSpan().SequenceEqual(sent));

        // 512 records: without the buffer, two socket reads or more each.
        Assert.True(_socket.Receives < 200, $"{_socket.Receives} socket reads for 512 records");
        Assert.False(_socket.HoldsReceiveBuffer);
    }

    [Fact]
    public async Task A_large_request_from_a_slow_client_wakes_the_reader_a_few_times()
    {
        // A client short of CPU: a record, then a pause. Each record would wake the reader but
        // for the low-water mark, which lets the socket gather about 256 KiB first.
        var sent = RandomNumberGenerator.GetBytes(2 * 1024 * 1024);
        var writing = Task.Run(async () =>
        {
            for (var at = 0; at < sent.Length; at += 16 * 1024)
            {
                await _clientTls.WriteAsync(sent.AsMemory(at, 16 * 1024));
                Thread.Sleep(1);
            }
        });

        var received = await ReadWholeAsync(sent.Length);
        await writing.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(received.AsSpan().SequenceEqual(sent));
        // Without the mark every record wakes the reader (128 reads or more); with it the reads are
        // a fraction of that, how small depending on how the writer and reader are scheduled.
        Assert.True(_socket.Receives < 100, $"{_socket.Receives} socket reads for 128 records");
    }

    [Fact]
    public async Task A_large_response_leaves_in_few_sends_and_arrives_whole()
    {
        var response = RandomNumberGenerator.GetBytes(4 * 1024 * 1024 + 123);
        var reading = Task.Run(async () =>
        {
            var got = new byte[response.Length];
            await _clientTls.ReadExactlyAsync(got);
            return got;
        });

        var before = _socket.Sends; // the handshake's
        _socket.BeginCoalescing();
        await _serverTls.WriteAsync(response);
        await _socket.FlushAsync(CancellationToken.None);

        Assert.True((await reading.WaitAsync(TimeSpan.FromSeconds(30))).AsSpan().SequenceEqual(response));

        // 257 records of 16 KiB (and some bytes of TLS framing each), 15 to a send of at most 256 KiB.
        Assert.InRange(_socket.Sends - before, 17, 19);
    }

    [Fact]
    public async Task Writes_outside_a_response_go_out_at_once()
    {
        await _serverTls.WriteAsync(new byte[] { 1, 2, 3 });
        var got = new byte[3];
        await _clientTls.ReadExactlyAsync(got).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(new byte[] { 1, 2, 3 }, got);
    }

    [Fact]
    public async Task Responses_coalesced_one_after_another_keep_their_order()
    {
        var expected = new List<byte>();
        for (var i = 0; i < 50; i++)
        {
            var response = new byte[1 + (i * 7919 % 40_000)];
            Array.Fill(response, (byte)i);
            expected.AddRange(response);
            _socket.BeginCoalescing();
            await _serverTls.WriteAsync(response);
            await _socket.FlushAsync(CancellationToken.None);
        }

        var got = new byte[expected.Count];
        await _clientTls.ReadExactlyAsync(got).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(expected, got);
    }

    [Fact]
    public async Task A_frame_trickling_in_is_received_as_its_bytes_come()
    {
        // A slow client: the rest of a 2 MiB frame in 4 KiB pieces with pauses. The low-water mark
        // must never ask for more than is still to come, or the last read would wait for ever.
        var sent = RandomNumberGenerator.GetBytes(2 * 1024 * 1024);
        var writing = Task.Run(async () =>
        {
            for (var at = 0; at < sent.Length; at += 4096)
            {
                await _clientTls.WriteAsync(sent.AsMemory(at, 4096));
                if (at % (256 * 1024) == 0)
                {
                    await Task.Delay(20);
                }
            }
        });

        var received = await ReadWholeAsync(sent.Length);
        await writing.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(received.AsSpan().SequenceEqual(sent));
    }

    [Fact]
    public async Task A_peer_closing_inside_a_frame_wakes_the_reader()
    {
        // The client promises 4 MiB but sends 1 MiB and closes: the reader, waiting with the mark
        // raised, must see the close at once, not wait for bytes that will not come.
        var sent = RandomNumberGenerator.GetBytes(1024 * 1024);
        await _clientTls.WriteAsync(sent);
        var buffer = new byte[4 * 1024 * 1024];
        var have = 0;
        while (have < sent.Length)
        {
            _socket.Expect(buffer.Length - have);
            have += await _serverTls.ReadAsync(buffer.AsMemory(have)).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }

        _socket.Expect(buffer.Length - have);
        var read = _serverTls.ReadAsync(buffer.AsMemory(have)).AsTask();
        await Task.Delay(100);
        Assert.False(read.IsCompleted);
        _client.Client.Close();
        var outcome = await Record.ExceptionAsync(async () => Assert.Equal(0, await read.WaitAsync(TimeSpan.FromSeconds(5))));
        Assert.True(outcome is null or IOException, outcome?.ToString());
    }

    [Fact]
    public async Task A_zero_byte_read_waits_for_bytes_without_a_buffer()
    {
        var wait = _serverTls.ReadAsync(Memory<byte>.Empty).AsTask();
        await Task.Delay(100);
        Assert.False(wait.IsCompleted);
        Assert.False(_socket.HoldsReceiveBuffer);

        await _clientTls.WriteAsync(new byte[] { 42 });
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
        var one = new byte[1];
        Assert.Equal(1, await _serverTls.ReadAsync(one).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(42, one[0]);
        Assert.False(_socket.HoldsReceiveBuffer);
    }

    // Reads as KafkaConnection reads a large frame: into its own memory, telling the socket stream how much is still to come.
    private async Task<byte[]> ReadWholeAsync(int length)
    {
        var received = new byte[length];
        var have = 0;
        while (have < length)
        {
            _socket.Expect(length - have);
            var n = await _serverTls.ReadAsync(received.AsMemory(have)).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.NotEqual(0, n);
            have += n;
        }

        _socket.Expect(0);
        return received;
    }

    private static X509Certificate2 MakeCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
    }
}
