using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Moldau.Broker;
using Moldau.Storage;

namespace Moldau.Server.Network;

/// <summary>
/// One client connection: cuts request frames from its stream, hands each to the dispatcher in
/// arrival order without waiting for the previous one, and writes the responses back in that
/// same order, each with a single write. It reads and writes a <see cref="Stream"/> (a
/// <see cref="NetworkStream"/> today), so TLS can be a layer underneath (an SslStream over it);
/// what the broker knows about the connection lives in its <see cref="ConnectionSession"/>.
/// </summary>
/// <remarks>
/// <code>
/// frame: +-----------+------------------------------+
///        | size      | request header + body        |
///        | int32 BE  | size bytes                   |
///        +-----------+------------------------------+
/// </code>
/// The declared size is checked before anything is allocated for the body, and the frame's bytes
/// are taken from the broker-wide budget (queued.max.request.bytes) before its body is received:
/// while the budget is spent, reading pauses. Frames are cut from a 64 KiB receive buffer, rented
/// only while bytes are pending (an idle connection waits with a zero-byte read and holds none); a
/// larger one is received straight into its own memory: a pooled array up to 1 MiB, beyond that
/// its own mapping, resident only as bytes arrive and unmapped once the frame is answered or its
/// connection closes. Requests in flight are bounded per connection too. Large frames are
/// dispatched by a second loop so that reading goes on while a big batch is written. A frame
/// that takes longer than moldau.request.receive.timeout.ms from first byte to last, and a
/// connection idle for connections.max.idle.ms, are closed (see <see cref="CheckTimeouts"/>).
/// </remarks>
internal sealed class KafkaConnection
{
    /// <summary>Requests dispatched but not yet answered, per connection.</summary>
    public const int MaxInFlight = 64;

    /// <summary>Bytes of request frames held per connection before reading pauses (one larger frame still passes alone).</summary>
    public const long MaxInFlightBytes = 64L * 1024 * 1024;

    /// <summary>Frames larger than this are received into their own memory mapping rather than a pooled array.</summary>
    public const int NativeFrameBytes = 1024 * 1024;

    private readonly SemaphoreSlim _drained = new(0);
    private long _inFlightBytes;

    private Stream _stream;
    private readonly TlsAcceptor? _tls;

    // Under TLS, the socket stream under _stream: a response's records are gathered into few sends.
    private TlsSocketStream? _tlsSocket;
    private readonly IRequestDispatcher _dispatcher;
    private readonly ConnectionSession _info;
    private readonly NetworkContext _network;
    private readonly int _maxFrameBytes;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _closed;
    private string? _closeReason;

    // The refusal kind when a limit closed the connection: its line is rate-limited.
    private string? _closeKind;

    // For CheckTimeouts: when a byte last came or went, when the frame being received began (0:
    // none, or reading paused), frames held (received and not yet answered), and whether reading
    // waits for memory.
    private long _lastActivity;
    private long _frameStartedAt;
    private int _held;
    private int _paused;

    /// <summary>A connection over <paramref name="stream"/>, which it owns and disposes; with <paramref name="tls"/>, over TLS on it.</summary>
    public KafkaConnection(Stream stream, IRequestDispatcher dispatcher, ConnectionSession session, NetworkContext network, CancellationToken stopping, TlsAcceptor? tls = null)
    {
        _stream = stream;
        _tls = tls;
        _dispatcher = dispatcher;
        _info = session;
        _network = network;
        _maxFrameBytes = network.Limits.MaxFrameBytes;
        _log = network.Log;
        _closed = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        _lastActivity = network.Time.GetTimestamp();
    }

    /// <summary>A received frame: a pooled array or, when large, its own mapping; <see cref="Length"/> bytes are charged to the budget.</summary>
    private readonly record struct Frame(byte[]? Array, NativeFrame? Native, int Length)
    {
        public Memory<byte> Memory => Native is { } n ? n.Memory[..Length] : Array.AsMemory(0, Length);

        public static Frame Allocate(int length) => length > NativeFrameBytes
            ? new Frame(null, NativeFrame.Allocate(length), length)
            : new Frame(ArrayPool<byte>.Shared.Rent(Math.Max(length, 1)), null, length);

        public void Free()
        {
            if (Native is { } n)
            {
                ((IDisposable)n).Dispose();
            }
            else
            {
                ArrayPool<byte>.Shared.Return(Array!);
            }
        }
    }

    // Received, Dispatched, Returned: Stopwatch timestamps of the frame's last byte, its dispatch and
    // its handler's return, for the request metrics (0 when not measured; a lane's in Timing).
    private readonly record struct Pending(ValueTask<DispatchResult> Result, Frame Frame, long Received = 0, long Dispatched = 0, long Returned = 0, LaneTiming? Timing = null);

    // When a lane dispatched a large frame and its handler returned (written before its result is set).
    private sealed class LaneTiming
    {
        public long Dispatched;
        public long Returned;
    }

    /// <summary>Frames at least this large are dispatched off the reading thread, so that the next one is read while this one is written to disk.</summary>
    public const int OffloadBytes = 64 * 1024;

    private const int ReceiveBufferBytes = 64 * 1024;

    // Lanes for large frames with an ordering key (see DispatchAsync).
    private const int Lanes = 2;

    private readonly SemaphoreSlim _lanesDrained = new(0);
    private readonly Channel<Pending> _inflight = Channel.CreateBounded<Pending>(new BoundedChannelOptions(MaxInFlight) { SingleReader = true, SingleWriter = true });
    private Lane[]? _lanes;
    private int _queued;

    /// <summary>Serves the connection until the peer closes it, a frame is bad, or the broker stops.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        if (_tls is not null && !await HandshakeAsync(_tls).ConfigureAwait(false))
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
            _closed.Dispose();
            _drained.Dispose();
            return;
        }

        var writer = WriteResponsesAsync(_inflight.Reader);
        // No receive buffer while nothing is pending: an idle connection holds none (see WaitForBytesAsync).
        byte[] buffer = [];
        try
        {
            // buffer[start..end] holds received bytes not yet cut into frames.
            int start = 0, end = 0;
            while (!_closed.IsCancellationRequested && _closeReason is null)
            {
                if (_info.ThrottleRemainingMs > 0 || (_info.Throttled && Interlocked.Read(ref _inFlightBytes) > 0))
                {
                    await MuteAsync(start < end).ConfigureAwait(false);
                }

                // Before SASL authentication a frame may be no larger than sasl.server.max.receive.size, as in Kafka.
                var unauthenticated = _info.Authentication == AuthenticationState.Pending;
                var maxFrameBytes = unauthenticated ? Math.Min(_maxFrameBytes, _network.Limits.SaslServerMaxReceiveBytes) : _maxFrameBytes;
                var state = Cut(buffer.AsSpan(start, end - start), maxFrameBytes, buffer.Length, out var size);
                if (state == FrameState.Bad)
                {
                    // Stop reading; the responses to earlier requests still go out, then the connection closes.
                    if (_tls is null && buffer[start] == 0x16 && buffer[start + 1] == 0x03)
                    {
                        // A TLS handshake record (0x16, version 3.x) where a frame size should be.
                        _closeKind ??= "tls on plaintext";
                        _closeReason ??= $"a TLS ClientHello on {_info.SecurityProtocol} listener {_info.ListenerName} (is the client set to security.protocol=SSL?)";
                    }

                    var limit = unauthenticated && maxFrameBytes < _maxFrameBytes ? "sasl.server.max.receive.size" : "socket.request.max.bytes";
                    _closeKind ??= limit;
                    _closeReason ??= $"declared frame size {size} outside 0..{maxFrameBytes} ({limit})";
                    break;
                }

                if (state == FrameState.Large)
                {
                    // A frame larger than the receive buffer: its body is received straight into its own memory.
                    var length = size;
                    await ReserveAsync(length).ConfigureAwait(false);
                    Frame frame;
                    try
                    {
                        frame = Frame.Allocate(length);
                    }
                    catch
                    {
                        Unreserve(length);
                        throw;
                    }

                    var have = end - start - 4;
                    buffer.AsSpan(start + 4, have).CopyTo(frame.Memory.Span);
                    start = end = 0;
                    try
                    {
                        while (have < length)
                        {
                            _tlsSocket?.Expect(length - have);
                            var n = await _stream.ReadAsync(frame.Memory[have..], _closed.Token).ConfigureAwait(false);
                            if (n == 0)
                            {
                                throw new IOException("the peer closed the connection inside a frame");
                            }

                            have += n;
                            Volatile.Write(ref _lastActivity, _network.Time.GetTimestamp());
                        }
                    }
                    catch
                    {
                        Release(frame);
                        throw;
                    }
                    finally
                    {
                        _tlsSocket?.Expect(0);
                    }

                    Volatile.Write(ref _frameStartedAt, 0);
                    await DispatchAsync(frame).ConfigureAwait(false);
                    continue;
                }

                if (state == FrameState.Incomplete)
                {
                    // Need more bytes: move what is left to the front, then receive.
                    if (start == end && buffer.Length > 0)
                    {
                        // Everything received was cut: give the buffer back until the next bytes come.
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = [];
                        start = end = 0;
                    }
                    else if (start > 0)
                    {
                        buffer.AsSpan(start, end - start).CopyTo(buffer);
                        end -= start;
                        start = 0;
                    }

                    if (buffer.Length == 0)
                    {
                        // A zero-byte read waits for readability (bytes or the peer's close) without a buffer.
                        await _stream.ReadAsync(Memory<byte>.Empty, _closed.Token).ConfigureAwait(false);
                        buffer = ArrayPool<byte>.Shared.Rent(ReceiveBufferBytes);
                    }

                    var received = await _stream.ReadAsync(buffer.AsMemory(end), _closed.Token).ConfigureAwait(false);
                    if (received == 0)
                    {
                        break;
                    }

                    var now = _network.Time.GetTimestamp();
                    Volatile.Write(ref _lastActivity, now);
                    if (end == 0)
                    {
                        Volatile.Write(ref _frameStartedAt, now); // the first bytes of a frame
                    }

                    end += received;
                    continue;
                }

                await ReserveAsync(size).ConfigureAwait(false);
                var body = new Frame(ArrayPool<byte>.Shared.Rent(Math.Max(size, 1)), null, size);
                buffer.AsSpan(start + 4, size).CopyTo(body.Array);
                start += 4 + size;
                Volatile.Write(ref _frameStartedAt, start < end ? _network.Time.GetTimestamp() : 0);
                await DispatchAsync(body).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The peer went away.
        }
        finally
        {
            if (buffer.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            // Every frame handed to a lane is dispatched before the responses are closed off.
            while (Volatile.Read(ref _queued) > 0)
            {
                await _lanesDrained.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            }

            _inflight.Writer.TryComplete();
        }

        await writer.ConfigureAwait(false);
        if (_closeKind is not null)
        {
            _network.Refusals.Refused(_closeKind, $"closing connection {_info.Id} from {_info.Remote}: {_closeReason}");
        }
        else if (_closeReason is not null)
        {
            _log.LogWarning("closing connection {Id} from {Peer}: {Reason}", _info.Id, _info.Remote, _closeReason);
        }

        if (_stream is NetworkStream network)
        {
            try
            {
                network.Socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
        _closed.Dispose();
        _drained.Dispose();

        // _lanesDrained stays: a lane may still release it just after the count reached zero.
    }

    // The TLS handshake counts as a frame being received: moldau.request.receive.timeout.ms bounds
    // it (CheckTimeouts aborts it), so a client that stalls it does not hold its slot for long.
    private async ValueTask<bool> HandshakeAsync(TlsAcceptor tls)
    {
        Volatile.Write(ref _frameStartedAt, _network.Time.GetTimestamp());
        try
        {
            if (await tls.AcceptAsync(_stream, _info, _network, _closed.Token).ConfigureAwait(false) is not { } secured)
            {
                return false;
            }

            (_stream, _tlsSocket) = secured;
            Volatile.Write(ref _lastActivity, _network.Time.GetTimestamp());
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            if (_closeKind is not null)
            {
                _network.Refusals.Refused(
                    "tls: handshake timeout",
                    $"closing connection {_info.Id} from {_info.Remote}: TLS handshake not done within {_network.Limits.RequestReceiveTimeoutMs} ms (moldau.request.receive.timeout.ms)");
            }

            return false;
        }
        finally
        {
            Volatile.Write(ref _frameStartedAt, 0);
        }
    }

    /// <summary>What the received bytes hold at their start.</summary>
    internal enum FrameState
    {
        /// <summary>Not yet a whole frame: receive more.</summary>
        Incomplete,

        /// <summary>A whole frame of <c>size</c> bytes after its 4-byte prefix.</summary>
        Complete,

        /// <summary>A frame too large for the receive buffer: its body goes into its own array.</summary>
        Large,

        /// <summary>A size outside 0..socket.request.max.bytes: the connection ends.</summary>
        Bad,
    }

    /// <summary>
    /// Looks at the bytes received and not yet cut (<paramref name="received"/>, at the start of a
    /// frame): whether a frame can be cut, and its declared <paramref name="size"/> once the
    /// 4-byte prefix is in. The size is checked before anything is allocated for the body.
    /// </summary>
    internal static FrameState Cut(ReadOnlySpan<byte> received, int maxFrameBytes, int bufferLength, out int size)
    {
        size = 0;
        if (received.Length < 4)
        {
            return FrameState.Incomplete;
        }

        size = BinaryPrimitives.ReadInt32BigEndian(received);
        if (size < 0 || size > maxFrameBytes)
        {
            return FrameState.Bad;
        }

        if ((long)size + 4 > bufferLength)
        {
            return FrameState.Large;
        }

        return received.Length - 4 >= size ? FrameState.Complete : FrameState.Incomplete;
    }

    /// <summary>Whether part of a frame has arrived and the rest not yet (reading not paused).</summary>
    internal bool IsReceivingFrame => Volatile.Read(ref _frameStartedAt) != 0;

    /// <summary>
    /// Closes the connection when a frame has been arriving for longer than
    /// moldau.request.receive.timeout.ms, or nothing came, went or waited for
    /// connections.max.idle.ms (-1: never). Called by the listener's timer; <paramref name="now"/> is a
    /// timestamp of the broker's <see cref="TimeProvider"/>.
    /// </summary>
    public void CheckTimeouts(long now)
    {
        var limits = _network.Limits;
        var started = Volatile.Read(ref _frameStartedAt);
        if (started != 0 && _network.Time.GetElapsedTime(started, now).TotalMilliseconds > limits.RequestReceiveTimeoutMs)
        {
            Abort("moldau.request.receive.timeout.ms", $"request not received whole within {limits.RequestReceiveTimeoutMs} ms (moldau.request.receive.timeout.ms)");
        }
        else if (limits.ConnectionsMaxIdleMs >= 0 && started == 0 && Volatile.Read(ref _held) == 0 && Volatile.Read(ref _paused) == 0
            && _network.Time.GetElapsedTime(Volatile.Read(ref _lastActivity), now).TotalMilliseconds > limits.ConnectionsMaxIdleMs)
        {
            Abort("connections.max.idle.ms", $"idle for more than {limits.ConnectionsMaxIdleMs} ms (connections.max.idle.ms)");
        }
    }

    // Takes a frame's bytes before its body is received: from this connection's bound on requests
    // in flight (waiting for its responses to drain) and from the broker-wide budget (waiting for
    // any connection to give bytes back). Reading is paused meanwhile, and the receive timeout
    // with it: it starts again once the bytes are granted.
    private async ValueTask ReserveAsync(int length)
    {
        var paused = false;
        while (Interlocked.Read(ref _inFlightBytes) > 0 && Interlocked.Read(ref _inFlightBytes) + length > MaxInFlightBytes)
        {
            paused = Pause(paused);
            await _drained.WaitAsync(_closed.Token).ConfigureAwait(false);
        }

        if (!_network.Budget.TryTake(length))
        {
            paused = Pause(paused);
            _network.Refusals.Refused(
                "queued.max.request.bytes",
                $"request memory spent ({_network.Budget.Capacity} bytes, queued.max.request.bytes): reading paused on connection {_info.Id} from {_info.Remote} until requests are answered");
            await _network.Budget.TakeAsync(length, _closed.Token).ConfigureAwait(false);
        }

        Interlocked.Add(ref _inFlightBytes, length);
        Interlocked.Increment(ref _held);
        if (paused)
        {
            var now = _network.Time.GetTimestamp();
            Volatile.Write(ref _lastActivity, now);
            Volatile.Write(ref _frameStartedAt, now);
            Volatile.Write(ref _paused, 0);
        }
    }

    // A client over its quota: no request is read until its throttle time has passed, as Kafka
    // mutes the channel after the throttled response (KIP-219); once throttled, a connection
    // reads its next request only after the previous one is answered, so requests read ahead
    // can't slip past the throttle. Timeouts pause meanwhile.
    private async Task MuteAsync(bool partialFrame)
    {
        Pause(false);
        while (Interlocked.Read(ref _inFlightBytes) > 0)
        {
            await _drained.WaitAsync(_closed.Token).ConfigureAwait(false);
        }

        while (_info.ThrottleRemainingMs is var ms and > 0)
        {
            await Task.Delay(ms, _closed.Token).ConfigureAwait(false);
        }

        var now = _network.Time.GetTimestamp();
        Volatile.Write(ref _lastActivity, now);
        Volatile.Write(ref _frameStartedAt, partialFrame ? now : 0);
        Volatile.Write(ref _paused, 0);
    }

    private bool Pause(bool paused)
    {
        if (!paused)
        {
            Volatile.Write(ref _paused, 1);
            Volatile.Write(ref _frameStartedAt, 0);
        }

        return true;
    }

    private void Unreserve(int length)
    {
        _network.Budget.Give(length);
        Interlocked.Add(ref _inFlightBytes, -length);
        Interlocked.Decrement(ref _held);
        _drained.Release();
    }

    private void Release(Frame frame)
    {
        frame.Free();
        Unreserve(frame.Length);
    }

    // A large frame (a produce request carrying a big batch) is dispatched by one of the lanes, so
    // this loop goes on receiving while the batch is written. Frames with the same ordering key
    // (one partition) share a lane and keep their order; frames of different partitions may be
    // written at once. A frame without a key (every other request) is dispatched here, only once
    // every frame before it has been and their writes are done: the lanes are drained first, then
    // the session's writes (a produce request waiting for its turn on a partition). Responses
    // keep arrival order whatever the lanes do: each frame's place in line is taken here.
    private async ValueTask DispatchAsync(Frame frame)
    {
        var measured = _network.Metrics is not null;
        var received = measured ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        var key = frame.Length >= OffloadBytes ? _dispatcher.OrderingKey(frame.Memory) : null;
        if (key is null)
        {
            while (Volatile.Read(ref _queued) > 0)
            {
                await _lanesDrained.WaitAsync(_closed.Token).ConfigureAwait(false);
            }

            var written = _info.WhenWritesDoneAsync();
            if (!written.IsCompletedSuccessfully)
            {
                await written.AsTask().WaitAsync(_closed.Token).ConfigureAwait(false);
            }

            var dispatched = measured ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            var dispatching = Dispatch(frame);
            var returned = measured ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            await _inflight.Writer.WriteAsync(new Pending(dispatching, frame, received, dispatched, returned), _closed.Token).ConfigureAwait(false);
            return;
        }

        _lanes ??= [.. Enumerable.Range(0, Lanes).Select(_ => new Lane(this))];
        var timing = measured ? new LaneTiming() : null;
        var result = new TaskCompletionSource<DispatchResult>(timing, TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Increment(ref _queued);
        _lanes[(int)((uint)key.Value % Lanes)].Enqueue(new Offloaded(frame, result));
        await _inflight.Writer.WriteAsync(new Pending(new ValueTask<DispatchResult>(result.Task), frame, received, Timing: timing), _closed.Token).ConfigureAwait(false);
    }

    private readonly record struct Offloaded(Frame Frame, TaskCompletionSource<DispatchResult> Result);

    // The lanes of all connections run on a few dedicated threads: a lane's frame waits for the
    // disk, which on thread-pool threads would starve the socket loops. A lane runs on one thread
    // at a time, taking its frames in order.
    private static readonly IoThreads LaneThreads = new("moldau-lane", 4);

    private sealed class Lane(KafkaConnection connection)
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<Offloaded> _frames = new();
        private int _scheduled;
        private Action? _drain;

        public void Enqueue(Offloaded frame)
        {
            _frames.Enqueue(frame);
            Schedule();
        }

        private void Schedule()
        {
            if (Interlocked.CompareExchange(ref _scheduled, 1, 0) == 0)
            {
                LaneThreads.Enqueue(_drain ??= Drain);
            }
        }

        private void Drain()
        {
            while (_frames.TryDequeue(out var frame))
            {
                connection.DispatchOffloaded(frame);
            }

            Volatile.Write(ref _scheduled, 0);
            if (!_frames.IsEmpty)
            {
                Schedule(); // a frame came in after the queue looked empty
            }
        }
    }

    private void DispatchOffloaded(Offloaded offloaded)
    {
        var (frame, result) = offloaded;
        var timing = result.Task.AsyncState as LaneTiming;
        timing?.Dispatched = System.Diagnostics.Stopwatch.GetTimestamp();
        var pending = Dispatch(frame);
        timing?.Returned = System.Diagnostics.Stopwatch.GetTimestamp();
        if (Interlocked.Decrement(ref _queued) == 0)
        {
            _lanesDrained.Release();
        }

        // The state change is done; the answer may still wait (an fsync), without holding the lane.
        if (pending.IsCompleted)
        {
            Complete(pending, result);
        }
        else
        {
            _ = CompleteLaterAsync(pending, result);
        }
    }

    private static void Complete(ValueTask<DispatchResult> pending, TaskCompletionSource<DispatchResult> result)
    {
        try
        {
            result.SetResult(pending.Result);
        }
        catch (Exception e)
        {
            result.SetException(e);
        }
    }

    private static async Task CompleteLaterAsync(ValueTask<DispatchResult> pending, TaskCompletionSource<DispatchResult> result)
    {
        try
        {
            result.SetResult(await pending.ConfigureAwait(false));
        }
        catch (Exception e)
        {
            result.SetException(e);
        }
    }

    private ValueTask<DispatchResult> Dispatch(Frame frame)
    {
        try
        {
            return _dispatcher.Dispatch(frame.Memory, _info, _closed.Token);
        }
        catch (Exception e)
        {
            return ValueTask.FromException<DispatchResult>(e);
        }
    }

    private void Abort(string reason) => Abort(null, reason);

    private void Abort(string? kind, string reason)
    {
        if (_closeReason is null)
        {
            _closeKind = kind;
            _closeReason = reason;
        }

        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already closed (a timeout checked just as the connection ended).
        }
    }

    private async Task WriteResponsesAsync(ChannelReader<Pending> pending)
    {
        // Every pending request is awaited, even after a close, so its frame goes back to the pool.
        var metrics = _network.Metrics;
        await foreach (var p in pending.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            DispatchResult result;
            short apiKey = -1, apiVersion = -1;
            if (metrics is not null && !Moldau.Protocol.RequestHeader.TryPeek(p.Frame.Memory.Span, out apiKey, out apiVersion, out _))
            {
                apiKey = -1;
            }

            try
            {
                result = await p.Result.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_closed.IsCancellationRequested)
            {
                continue;
            }
            catch (Exception e)
            {
                _log.LogError(e, "request on connection {Id} from {Peer} failed", _info.Id, _info.Remote);
                Abort("request handling failed: " + e.Message);
                continue;
            }
            finally
            {
                Release(p.Frame);
            }

            if (_closed.IsCancellationRequested)
            {
                continue;
            }

            if (result.Close && result.Response is null)
            {
                Abort(result.CloseReason ?? "closed by the broker");
                continue;
            }

            var ready = metrics is not null ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            if (result.Response is { } response)
            {
                try
                {
                    if (_tlsSocket is { } tlsSocket && result.Length > TlsSocketStream.RecordBytes)
                    {
                        // Larger than one TLS record: its records (one per 16 KiB) are sent together, not one send each.
                        tlsSocket.BeginCoalescing();
                        await _stream.WriteAsync(response.AsMemory(0, result.Length)).ConfigureAwait(false);
                        await tlsSocket.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                    }
                    else
                    {
                        await _stream.WriteAsync(response.AsMemory(0, result.Length)).ConfigureAwait(false);
                    }

                    Volatile.Write(ref _lastActivity, _network.Time.GetTimestamp());
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
                {
                    Abort("send failed: " + e.Message);
                }
                finally
                {
                    if (result.Pooled)
                    {
                        ArrayPool<byte>.Shared.Return(response);
                    }
                }

                if (result.Close)
                {
                    // A failed SASL exchange: its answer went out, then the connection ends.
                    Abort(result.CloseReason ?? "closed by the broker");
                }
            }

            if (metrics is not null && apiKey >= 0)
            {
                var (dispatched, returned) = p.Timing is { } t ? (t.Dispatched, t.Returned) : (p.Dispatched, p.Returned);
                metrics.Completed(apiKey, apiVersion, p.Received, dispatched, returned, ready, System.Diagnostics.Stopwatch.GetTimestamp());
            }
        }
    }
}
