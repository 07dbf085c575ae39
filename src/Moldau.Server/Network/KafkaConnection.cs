using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Moldau.Broker;

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
/// The declared size is checked before anything is allocated for the body, and the body is
/// copied out of the pipe only once all its bytes have arrived. Requests in flight are bounded,
/// which also bounds the bytes held per connection.
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

    /// <summary>Serves the connection until the peer closes it, a frame is bad, or the broker stops.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        var inflight = Channel.CreateBounded<Pending>(new BoundedChannelOptions(MaxInFlight) { SingleReader = true, SingleWriter = true });
        var writer = WriteResponsesAsync(inflight.Reader);
        await using var stream = new NetworkStream(_socket, ownsSocket: false);
        var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 4096, leaveOpen: true));
        try
        {
            while (!_closed.IsCancellationRequested)
            {
                var result = await reader.ReadAsync(_closed.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (_closeReason is null && TryReadFrame(ref buffer, out var frame))
                {
                    // Bound the bytes held by requests in flight: wait for responses to drain.
                    while (Interlocked.Read(ref _inFlightBytes) > 0 && Interlocked.Read(ref _inFlightBytes) + frame.Length > MaxInFlightBytes)
                    {
                        await _drained.WaitAsync(_closed.Token).ConfigureAwait(false);
                    }

                    Interlocked.Add(ref _inFlightBytes, frame.Length);
                    var bytes = ArrayPool<byte>.Shared.Rent((int)frame.Length);
                    frame.CopyTo(bytes);
                    ValueTask<DispatchResult> pending;
                    try
                    {
                        pending = _dispatcher.Dispatch(bytes.AsMemory(0, (int)frame.Length), _info, _closed.Token);
                    }
                    catch (Exception e)
                    {
                        pending = ValueTask.FromException<DispatchResult>(e);
                    }

                    await inflight.Writer.WriteAsync(new Pending(pending, bytes, (int)frame.Length), _closed.Token).ConfigureAwait(false);
                }

                reader.AdvanceTo(buffer.Start, buffer.End);
                if (_closeReason is not null || result.IsCompleted)
                {
                    break;
                }
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
            inflight.Writer.TryComplete();
            await reader.CompleteAsync().ConfigureAwait(false);
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
    }

    private bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> frame)
    {
        frame = default;
        if (buffer.Length < 4)
        {
            return false;
        }

        Span<byte> prefix = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(prefix);
        var size = BinaryPrimitives.ReadInt32BigEndian(prefix);
        if (size < 0 || size > _maxFrameBytes)
        {
            // Stop reading; the responses to earlier requests still go out, then the connection closes.
            _closeReason ??= $"declared frame size {size} outside 0..{_maxFrameBytes} (socket.request.max.bytes)";
            return false;
        }

        if (buffer.Length - 4 < size)
        {
            return false;
        }

        frame = buffer.Slice(4, size);
        buffer = buffer.Slice(frame.End);
        return true;
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
                ArrayPool<byte>.Shared.Return(p.Frame);
                Interlocked.Add(ref _inFlightBytes, -p.Length);
                _drained.Release();
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
