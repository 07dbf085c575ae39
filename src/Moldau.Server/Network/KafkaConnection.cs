using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Moldau.Broker;
using Moldau.Storage;

namespace Moldau.Server.Network;

/// <summary>
/// One client connection: cuts request frames from the socket, hands each to the dispatcher in
/// arrival order without waiting for the previous one, and writes the responses back in that
/// same order, each with a single send.
/// </summary>
/// <remarks>
/// <code>
/// frame: +-----------+------------------------------+
///        | size      | request header + body        |
///        | int32 BE  | size bytes                   |
///        +-----------+------------------------------+
/// </code>
/// The declared size is checked before anything is allocated for the body. Frames are cut from a
/// 64 KiB receive buffer; a larger frame is received straight into its own pooled array, which
/// grows with the bytes that arrive rather than with the size the client declared. Requests in
/// flight are bounded, which also bounds the bytes held per connection. Large frames are
/// dispatched by a second loop so that reading goes on while a big batch is written.
/// </remarks>
internal sealed class KafkaConnection
{
    /// <summary>Requests dispatched but not yet answered, per connection.</summary>
    public const int MaxInFlight = 64;

    /// <summary>Bytes of request frames held per connection before reading pauses (one larger frame still passes alone).</summary>
    public const long MaxInFlightBytes = 64L * 1024 * 1024;

    private readonly SemaphoreSlim _drained = new(0);
    private long _inFlightBytes;

    private readonly Socket _socket;
    private readonly IRequestDispatcher _dispatcher;
    private readonly ConnectionInfo _info;
    private readonly int _maxFrameBytes;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _closed;
    private string? _closeReason;

    public KafkaConnection(Socket socket, IRequestDispatcher dispatcher, ConnectionInfo info, int maxFrameBytes, ILogger log, CancellationToken stopping)
    {
        _socket = socket;
        _dispatcher = dispatcher;
        _info = info;
        _maxFrameBytes = maxFrameBytes;
        _log = log;
        _closed = CancellationTokenSource.CreateLinkedTokenSource(stopping);
    }

    private readonly record struct Pending(ValueTask<DispatchResult> Result, byte[] Frame, int Length);

    /// <summary>Frames at least this large are dispatched off the reading thread, so that the next one is read while this one is written to disk.</summary>
    public const int OffloadBytes = 64 * 1024;

    private const int ReceiveBufferBytes = 64 * 1024;

    // A frame larger than the receive buffer starts in an array of this size at most.
    private const int GrowFrom = 1024 * 1024 + 4096;

    // Lanes for large frames with an ordering key (see DispatchAsync).
    private const int Lanes = 2;

    private readonly SemaphoreSlim _lanesDrained = new(0);
    private readonly Channel<Pending> _inflight = Channel.CreateBounded<Pending>(new BoundedChannelOptions(MaxInFlight) { SingleReader = true, SingleWriter = true });
    private Lane[]? _lanes;
    private int _queued;

    /// <summary>Serves the connection until the peer closes it, a frame is bad, or the broker stops.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        var writer = WriteResponsesAsync(_inflight.Reader);
        var buffer = ArrayPool<byte>.Shared.Rent(ReceiveBufferBytes);
        try
        {
            // buffer[start..end] holds received bytes not yet cut into frames.
            int start = 0, end = 0;
            while (!_closed.IsCancellationRequested && _closeReason is null)
            {
                var state = Cut(buffer.AsSpan(start, end - start), _maxFrameBytes, buffer.Length, out var size);
                if (state == FrameState.Bad)
                {
                    // Stop reading; the responses to earlier requests still go out, then the connection closes.
                    _closeReason ??= $"declared frame size {size} outside 0..{_maxFrameBytes} (socket.request.max.bytes)";
                    break;
                }

                if (state != FrameState.Complete)
                {
                    if (state == FrameState.Large)
                    {
                        // A frame larger than the receive buffer: its body is received straight into its own array.
                        var length = size;
                        await ReserveAsync(length).ConfigureAwait(false);

                        // The array grows with the bytes that arrive, not with what the size prefix claims.
                        var frame = ArrayPool<byte>.Shared.Rent(Math.Min(length, GrowFrom));
                        var have = end - start - 4;
                        buffer.AsSpan(start + 4, have).CopyTo(frame);
                        start = end = 0;
                        while (have < length)
                        {
                            if (have == frame.Length)
                            {
                                var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(length, 2L * frame.Length));
                                frame.AsSpan(0, have).CopyTo(larger);
                                ArrayPool<byte>.Shared.Return(frame);
                                frame = larger;
                            }

                            var n = await _socket.ReceiveAsync(frame.AsMemory(have, Math.Min(length, frame.Length) - have), SocketFlags.None, _closed.Token).ConfigureAwait(false);
                            if (n == 0)
                            {
                                Release(frame, length);
                                throw new IOException("the peer closed the connection inside a frame");
                            }

                            have += n;
                        }

                        await DispatchAsync(frame, length).ConfigureAwait(false);
                        continue;
                    }

                    // Need more bytes: move what is left to the front, then receive.
                    if (start > 0)
                    {
                        buffer.AsSpan(start, end - start).CopyTo(buffer);
                        end -= start;
                        start = 0;
                    }

                    var received = await _socket.ReceiveAsync(buffer.AsMemory(end), SocketFlags.None, _closed.Token).ConfigureAwait(false);
                    if (received == 0)
                    {
                        break;
                    }

                    end += received;
                    continue;
                }

                await ReserveAsync(size).ConfigureAwait(false);
                var body = ArrayPool<byte>.Shared.Rent(Math.Max(size, 1));
                buffer.AsSpan(start + 4, size).CopyTo(body);
                start += 4 + size;
                await DispatchAsync(body, size).ConfigureAwait(false);
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
            ArrayPool<byte>.Shared.Return(buffer);
            // Every frame handed to a lane is dispatched before the responses are closed off.
            while (Volatile.Read(ref _queued) > 0)
            {
                await _lanesDrained.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            }

            _inflight.Writer.TryComplete();
        }

        await writer.ConfigureAwait(false);
        if (_closeReason is not null)
        {
            _log.LogWarning("closing connection {Id} from {Peer}: {Reason}", _info.Id, _info.Remote, _closeReason);
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }

        _socket.Dispose();
        _closed.Dispose();
        _drained.Dispose();

        // _lanesDrained stays: a lane may still release it just after the count reached zero.
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

    // Bounds the bytes held by requests in flight: waits for responses to drain.
    private async ValueTask ReserveAsync(int length)
    {
        while (Interlocked.Read(ref _inFlightBytes) > 0 && Interlocked.Read(ref _inFlightBytes) + length > MaxInFlightBytes)
        {
            await _drained.WaitAsync(_closed.Token).ConfigureAwait(false);
        }

        Interlocked.Add(ref _inFlightBytes, length);
    }

    private void Release(byte[] frame, int length)
    {
        ArrayPool<byte>.Shared.Return(frame);
        Interlocked.Add(ref _inFlightBytes, -length);
        _drained.Release();
    }

    // A large frame (a produce request carrying a big batch) is dispatched by one of the lanes, so
    // this loop goes on receiving while the batch is written. Frames with the same ordering key
    // (one partition) share a lane and keep their order; frames of different partitions may be
    // written at once. A frame without a key (every other request) is dispatched here, only once
    // every frame before it has been: the lanes are drained first. Responses keep arrival order
    // whatever the lanes do: each frame's place in line is taken here, as it arrives.
    private async ValueTask DispatchAsync(byte[] frame, int length)
    {
        var key = length >= OffloadBytes ? _dispatcher.OrderingKey(frame.AsMemory(0, length)) : null;
        if (key is null)
        {
            while (Volatile.Read(ref _queued) > 0)
            {
                await _lanesDrained.WaitAsync(_closed.Token).ConfigureAwait(false);
            }

            await _inflight.Writer.WriteAsync(new Pending(Dispatch(frame, length), frame, length), _closed.Token).ConfigureAwait(false);
            return;
        }

        _lanes ??= [.. Enumerable.Range(0, Lanes).Select(_ => new Lane(this))];
        var result = new TaskCompletionSource<DispatchResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Increment(ref _queued);
        _lanes[(int)((uint)key.Value % Lanes)].Enqueue(new Offloaded(frame, length, result));
        await _inflight.Writer.WriteAsync(new Pending(new ValueTask<DispatchResult>(result.Task), frame, length), _closed.Token).ConfigureAwait(false);
    }

    private readonly record struct Offloaded(byte[] Frame, int Length, TaskCompletionSource<DispatchResult> Result);

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
        var (frame, length, result) = offloaded;
        var pending = Dispatch(frame, length);
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

    private ValueTask<DispatchResult> Dispatch(byte[] frame, int length)
    {
        try
        {
            return _dispatcher.Dispatch(frame.AsMemory(0, length), _info, _closed.Token);
        }
        catch (Exception e)
        {
            return ValueTask.FromException<DispatchResult>(e);
        }
    }

    private void Abort(string reason)
    {
        _closeReason ??= reason;
        _closed.Cancel();
    }

    private async Task WriteResponsesAsync(ChannelReader<Pending> pending)
    {
        // Every pending request is awaited, even after a close, so its frame goes back to the pool.
        await foreach (var p in pending.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            DispatchResult result;
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
                Release(p.Frame, p.Length);
            }

            if (_closed.IsCancellationRequested)
            {
                continue;
            }

            if (result.Close)
            {
                Abort(result.CloseReason ?? "closed by the broker");
                continue;
            }

            if (result.Response is { } response)
            {
                try
                {
                    await _socket.SendAsync(response.AsMemory(0, result.Length), SocketFlags.None).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
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
            }
        }
    }
}
