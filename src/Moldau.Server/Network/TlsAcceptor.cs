using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.Extensions.Logging;
using Moldau.Broker;
using Moldau.Security.Tls;

namespace Moldau.Server.Network;

/// <summary>
/// The TLS layer of one SSL or SASL_SSL listener: the server side of the handshake over a
/// connection's socket stream, before the frame loop starts, and a timer that reloads the
/// certificates when their files change.
/// </summary>
/// <remarks>
/// Before the handshake the first byte is peeked at: a TLS record starts with 0x16 (handshake).
/// A Kafka frame (a size, whose first byte is 0 below 16 MiB) means a client speaking plaintext to
/// a TLS port; anything else is garbage. Either, a failed handshake or a refused client certificate
/// closes the connection with one line (one per kind every few seconds under a flood, see
/// <see cref="RefusalLog"/>). A handshake is bounded by moldau.request.receive.timeout.ms, the
/// bound on receiving one request (the connection counts it as a frame being received).
/// </remarks>
internal sealed class TlsAcceptor(TlsServer server, string listener, ILogger log) : IAsyncDisposable
{
    private ITimer? _reload;

    /// <summary>The TLS side: settings, current certificates, principal mapping.</summary>
    public TlsServer Server { get; } = server;

    /// <summary>Checks the certificate files every moldau.ssl.reload.interval.ms.</summary>
    public void StartReloading(TimeProvider time)
    {
        var every = Server.Settings.ReloadIntervalMs;
        if (every > 0)
        {
            _reload = time.CreateTimer(_ => Reload(), null, TimeSpan.FromMilliseconds(every), TimeSpan.FromMilliseconds(every));
        }
    }

    private void Reload()
    {
        switch (Server.CheckFiles(out var error))
        {
            case TlsReload.Reloaded:
                log.LogInformation("{Listener}: TLS certificates reloaded, new handshakes use '{Subject}' (valid until {NotAfter:u})", listener, Server.Material.Certificate.Subject, Server.Material.Certificate.NotAfter.ToUniversalTime());
                break;
            case TlsReload.Failed:
                log.LogWarning("{Listener}: TLS files changed but do not load, keeping the certificates in use: {Error}", listener, error);
                break;
        }
    }

    /// <summary>
    /// Runs the server side of the handshake over <paramref name="stream"/>; on success the TLS
    /// stream and the socket stream under it (the session's principal set from the client
    /// certificate), null when the connection is to close (why is logged). Cancelled by
    /// <paramref name="cancel"/> (the receive timeout or a stop).
    /// </summary>
    public async ValueTask<(SslStream Tls, TlsSocketStream Socket)?> AcceptAsync(Stream stream, ConnectionSession session, NetworkContext network, CancellationToken cancel)
    {
        var peer = $"connection {session.Id} from {session.Remote} on {listener}";
        if (stream is NetworkStream { Socket: var socket })
        {
            var first = new byte[1];
            var n = await socket.ReceiveAsync(first, SocketFlags.Peek, cancel).ConfigureAwait(false);
            if (n == 0)
            {
                return null; // closed before saying anything (a port probe)
            }

            if (first[0] != 0x16)
            {
                if (first[0] == 0)
                {
                    network.Refusals.Refused("tls: plaintext", $"closing {peer}: it speaks plaintext Kafka to a TLS listener (is the client set to security.protocol=SSL?)");
                }
                else
                {
                    network.Refusals.Refused("tls: not a ClientHello", $"closing {peer}: first byte 0x{first[0]:x2} is not a TLS handshake record");
                }

                return null;
            }
        }

        var verdict = new ClientCertificateVerdict();
        var transport = new TlsSocketStream(stream);
        var ssl = new SslStream(transport, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsServerAsync(Server.Options(verdict), cancel).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AuthenticationException or IOException or SocketException or ObjectDisposedException)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            if (verdict.Refusal is { } refusal)
            {
                network.Refusals.Refused("tls: client certificate " + refusal[(refusal.LastIndexOf(':') + 1)..].Trim(), $"closing {peer}: TLS handshake failed: {refusal}");
            }
            else
            {
                var reason = e.InnerException is { } inner ? $"{e.Message} ({inner.Message})" : e.Message;
                network.Refusals.Refused("tls: handshake", $"closing {peer}: TLS handshake failed: {reason}");
            }

            return null;
        }
        catch (OperationCanceledException)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var principal = Server.PrincipalOf(ssl.RemoteCertificate);
        if (principal is null)
        {
            network.Refusals.Refused("tls: principal", $"closing {peer}: no ssl.principal.mapping.rules rule applies to '{ssl.RemoteCertificate?.Subject}'");
            await ssl.DisposeAsync().ConfigureAwait(false);
            return null;
        }

        session.Principal = principal;
        log.LogDebug("{Peer}: {Protocol} {Cipher}, principal {Principal}", peer, ssl.SslProtocol, ssl.NegotiatedCipherSuite, principal);
        return (ssl, transport);
    }

    /// <summary>Stops the reload timer.</summary>
    public ValueTask DisposeAsync() => _reload?.DisposeAsync() ?? ValueTask.CompletedTask;
}
