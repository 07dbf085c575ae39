using System.Buffers;
using System.Net.Sockets;

namespace Moldau.Server.Network;

/// <summary>
/// The stream under a connection's SslStream: the socket, received in large chunks and, while a
/// response is written, sent in few large writes.
/// </summary>
/// <remarks>
/// An SslStream reads its inner stream one TLS record (at most 16 KiB) at a time, each read
/// preceded by a zero-byte read, and writes each record it encrypts with its own write. On the
/// socket directly that is two receive calls per 16 KiB that arrives (often more: a read that
/// finds half a record waits for the rest through the socket engine and the thread pool) and one
/// send per 16 KiB that leaves; a MB produced cost about 240 receive calls and 470 thread
/// switches, where plaintext takes 5 and 17 (bench/sasl_ssl.sh's P3). Here a receive takes whatever the socket
/// holds, up to <see cref="ReceiveChunkBytes"/>, and the SslStream's reads are served from it
/// without a system call; a zero-byte read with bytes held returns at once, and without bytes it
/// waits on the socket without a buffer, so an idle connection holds none (the chunk is rented
/// only while bytes are held); while a large frame is being received, the socket's low-water mark
/// makes the reader wake once per large part of it (see <see cref="Expect"/>). Between <see cref="BeginCoalescing"/> and <see cref="FlushAsync(CancellationToken)"/>
/// (one response) the encrypted records are gathered and sent in writes of up to
/// <see cref="SendChunkBytes"/>; any other write (the handshake, a post-handshake message the TLS
/// layer sends on its own) goes out at once, after whatever was gathered before it, so the order
/// of the bytes on the wire is the order of the writes.
/// </remarks>
internal sealed class TlsSocketStream(Stream socket) : Stream
{
    /// <summary>The most bytes one receive takes from the socket.</summary>
    public const int ReceiveChunkBytes = 256 * 1024;

    /// <summary>The most plaintext one TLS record carries: a response no larger goes out in one send without gathering.</summary>
    public const int RecordBytes = 16 * 1024;

    /// <summary>The most bytes gathered before a send.</summary>
    public const int SendChunkBytes = 256 * 1024;

    /// <summary>
    /// The most ciphertext the SslStream above may hold undecrypted (two records in its read
    /// buffer, rounded up): bytes of a frame that may already have left the socket.
    /// </summary>
    public const int LowWaterSlackBytes = 64 * 1024;

    private readonly SemaphoreSlim _sending = new(1, 1);
    private readonly Socket? _socket = (socket as NetworkStream)?.Socket;
    private long _expected;
    private int _lowWater = 1;

    // _received[_start.._end] holds bytes received and not yet read; [] while none are held.
    private byte[] _received = [];
    private int _start;
    private int _end;
    private int _receiving;

    // _gathered[.._gatheredLength] holds records of the current response not yet sent.
    private byte[] _gathered = [];
    private int _gatheredLength;
    private volatile bool _coalescing;
    private int _disposed;

    /// <summary>Receive calls made on the socket (zero-byte waits included).</summary>
    public long Receives { get; private set; }

    /// <summary>Send calls made on the socket.</summary>
    public long Sends { get; private set; }

    /// <summary>Whether a receive chunk is held (bytes received and not yet read).</summary>
    public bool HoldsReceiveBuffer => _received.Length > 0;

    /// <inheritdoc/>
    public override bool CanRead => true;

    /// <inheritdoc/>
    public override bool CanWrite => true;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>
    /// Gathers the writes that follow, up to <see cref="FlushAsync(CancellationToken)"/>, into few
    /// large sends. One response is written between the two.
    /// </summary>
    public void BeginCoalescing() => _coalescing = true;

    /// <summary>
    /// Tells the stream that at least <paramref name="bytes"/> more bytes of plaintext must arrive
    /// before the reader can do anything with them (the rest of a large frame); 0 when not known.
    /// </summary>
    /// <remarks>
    /// A client encrypts a large request one record at a time, so its bytes reach the socket a
    /// record or two apart, and a reader woken for each gets a few KiB per wake-up: the wake-ups,
    /// not the decryption, were most of the broker's CPU on a TLS produce. While the rest of a
    /// frame is known to be coming, the socket's receive low-water mark (SO_RCVLOWAT) is raised
    /// so that it wakes the reader only once a large part of it is there. The mark stays below
    /// what must still arrive, less what the SslStream may already hold
    /// (<see cref="LowWaterSlackBytes"/>), so it is always reached: a waiting reader is woken by
    /// the frame's own bytes, and the peer's close or an error wakes it whatever the mark.
    /// </remarks>
    public void Expect(long bytes) => _expected = bytes;

    /// <inheritdoc/>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_start < _end)
        {
            return new ValueTask<int>(TakeReceived(buffer.Span));
        }

        Receives++;
        SetLowWater();
        if (buffer.Length == 0)
        {
            // Wait for bytes (or the peer's close) without holding a buffer.
            return socket.ReadAsync(buffer, cancellationToken);
        }

        return ReceiveAsync(buffer, cancellationToken);
    }

    private async ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (buffer.Length >= ReceiveChunkBytes)
        {
            return await socket.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        if (_received.Length == 0)
        {
            _received = ArrayPool<byte>.Shared.Rent(ReceiveChunkBytes);
        }

        int n;
        Volatile.Write(ref _receiving, 1);
        try
        {
            n = await socket.ReadAsync(_received, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            ReturnReceived();
            throw;
        }
        finally
        {
            Volatile.Write(ref _receiving, 0);
        }

        _start = 0;
        _end = n;
        if (n == 0)
        {
            ReturnReceived();
            return 0;
        }

        return TakeReceived(buffer.Span);
    }

    private void SetLowWater()
    {
        var mark = (int)Math.Clamp(_expected - LowWaterSlackBytes, 1, ReceiveChunkBytes);
        if (mark != _lowWater && _socket is { } s)
        {
            try
            {
                s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReceiveLowWater, mark);
                _lowWater = mark;
            }
            catch (SocketException)
            {
                // Not supported here: every arrival wakes the reader, as without it.
                _expected = 0;
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    private int TakeReceived(Span<byte> buffer)
    {
        var n = Math.Min(buffer.Length, _end - _start);
        _received.AsSpan(_start, n).CopyTo(buffer);
        _start += n;
        if (_start == _end)
        {
            ReturnReceived();
        }

        return n;
    }

    private void ReturnReceived()
    {
        _start = _end = 0;
        if (_received.Length > 0 && Volatile.Read(ref _disposed) == 0)
        {
            ArrayPool<byte>.Shared.Return(_received);
        }

        _received = [];
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        if (_start < _end)
        {
            return TakeReceived(buffer);
        }

        Receives++;
        SetLowWater();
        return socket.Read(buffer);
    }

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _sending.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_coalescing)
            {
                await SendGatheredAsync(cancellationToken).ConfigureAwait(false);
                await SendAsync(buffer, cancellationToken).ConfigureAwait(false);
                return;
            }

            if (_gatheredLength + buffer.Length > SendChunkBytes)
            {
                await SendGatheredAsync(cancellationToken).ConfigureAwait(false);
                if (buffer.Length >= SendChunkBytes)
                {
                    await SendAsync(buffer, cancellationToken).ConfigureAwait(false);
                    return;
                }
            }

            if (_gathered.Length == 0)
            {
                _gathered = ArrayPool<byte>.Shared.Rent(SendChunkBytes);
            }

            buffer.CopyTo(_gathered.AsMemory(_gatheredLength));
            _gatheredLength += buffer.Length;
        }
        finally
        {
            _sending.Release();
        }
    }

    /// <summary>Sends what was gathered and ends the coalescing begun by <see cref="BeginCoalescing"/>.</summary>
    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        await _sending.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _coalescing = false;
            await SendGatheredAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sending.Release();
        }
    }

    // Called holding _sending.
    private async ValueTask SendGatheredAsync(CancellationToken cancellationToken)
    {
        if (_gatheredLength > 0)
        {
            var length = _gatheredLength;
            _gatheredLength = 0;
            await SendAsync(_gathered.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        }

        if (_gathered.Length > 0 && !_coalescing)
        {
            ArrayPool<byte>.Shared.Return(_gathered);
            _gathered = [];
        }
    }

    private ValueTask SendAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        Sends++;
        return socket.WriteAsync(buffer, cancellationToken);
    }

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _sending.Wait();
        try
        {
            if (_gatheredLength > 0)
            {
                Sends++;
                socket.Write(_gathered.AsSpan(0, _gatheredLength));
                _gatheredLength = 0;
            }

            Sends++;
            socket.Write(buffer);
        }
        finally
        {
            _sending.Release();
        }
    }

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            socket.Dispose();

            // The buffers go back to the pool only when no receive or send can still be using them
            // (the connection disposes its stream once its loops are done; otherwise the GC takes them).
            if (Volatile.Read(ref _receiving) == 0 && _received.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_received);
            }

            if (_sending.Wait(0) && _gathered.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_gathered);
            }

            _received = [];
            _gathered = [];
        }

        base.Dispose(disposing);
    }
}
