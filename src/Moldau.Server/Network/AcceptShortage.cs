using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Moldau.Server.Network;

/// <summary>
/// What a listener does when accept fails for want of descriptors or memory (EMFILE, ENFILE,
/// ENOBUFS, ENOMEM). The pending connection would stay in the backlog and fail every accept
/// again, so the loop would spin: instead one spare descriptor, held from the start, is closed,
/// the pending connection accepted and closed at once (the client sees a reset, not a hang), the
/// spare opened again, and the loop backs off (10 ms doubling to 1 s) until an accept succeeds.
/// One line is logged when a shortage begins and one when it ends.
/// </summary>
internal sealed class AcceptShortage(string listener, ILogger log)
{
    private static readonly Lock s_spareLock = new();
    private static SafeFileHandle? s_spare = OpenSpare();

    private static readonly TimeSpan s_first = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan s_longest = TimeSpan.FromSeconds(1);

    private TimeSpan _backoff;
    private long _refused;
    private long _began;

    /// <summary>Whether <paramref name="e"/>, thrown by accept, means descriptors or memory ran short.</summary>
    public static bool IsShortage(Exception e) => e switch
    {
        SocketException s => s.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable
            || s.ErrorCode is 23 /* ENFILE */ or 24 /* EMFILE */ or 12 /* ENOMEM */,
        OutOfMemoryException => true,
        _ => false,
    };

    /// <summary>Whether a shortage episode is going on.</summary>
    public bool InShortage => _backoff > TimeSpan.Zero;

    /// <summary>Handles a failed accept: refuses the pending connection with the spare descriptor, then waits out the back-off.</summary>
    public async Task OnShortageAsync(Socket listening, Exception e, CancellationToken stopping)
    {
        if (!InShortage)
        {
            _began = Environment.TickCount64;
            _backoff = s_first;
            log.LogWarning(
                "accept on {Listener} failed: {Error}; out of descriptors or memory, refusing new connections and backing off until accept succeeds",
                listener,
                e.Message);
        }
        else
        {
            _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, s_longest.Ticks));
        }

        await RefuseOneAsync(listening, stopping).ConfigureAwait(false);
        await Task.Delay(_backoff, stopping).ConfigureAwait(false);
    }

    /// <summary>After a successful accept: ends the episode, if there was one, with a line.</summary>
    public void OnAccepted()
    {
        if (InShortage)
        {
            log.LogWarning(
                "accept on {Listener} works again after {Ms} ms of shortage; {Refused} connections were refused",
                listener,
                Environment.TickCount64 - _began,
                _refused);
            _backoff = TimeSpan.Zero;
            _refused = 0;
        }
    }

    private async Task RefuseOneAsync(Socket listening, CancellationToken stopping)
    {
        lock (s_spareLock)
        {
            s_spare?.Dispose();
            s_spare = null;
        }

        try
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            wait.CancelAfter(TimeSpan.FromMilliseconds(50));
            using var pending = await listening.AcceptAsync(wait.Token).ConfigureAwait(false);
            pending.LingerState = new LingerOption(true, 0); // a reset: refused, not a clean close
            _refused++;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException or OutOfMemoryException)
        {
            // Nothing pending, or still short: the back-off tries again.
        }
        finally
        {
            lock (s_spareLock)
            {
                s_spare ??= OpenSpare();
            }
        }
    }

    private static SafeFileHandle? OpenSpare()
    {
        try
        {
            return File.OpenHandle(OperatingSystem.IsWindows() ? "NUL" : "/dev/null", FileMode.Open, FileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
