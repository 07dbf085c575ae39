using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Moldau.Server.Network;

/// <summary>
/// Logs refusals (a connection over a limit, a timeout, a frame too large) at most once per
/// interval for each kind, so that a flood of refusals costs one line per kind, not one per refusal;
/// the line that comes next says how many were not logged.
/// </summary>
internal sealed class RefusalLog(ILogger log, TimeProvider time, TimeSpan interval)
{
    private readonly ConcurrentDictionary<string, Kind> _kinds = new(StringComparer.Ordinal);

    private sealed class Kind
    {
        public long LastLogged = long.MinValue;
        public int Suppressed;
    }

    /// <summary>Notes one refusal of <paramref name="kind"/>; logs <paramref name="message"/> unless one of this kind was logged within the interval.</summary>
    public void Refused(string kind, string message)
    {
        var k = _kinds.GetOrAdd(kind, static _ => new Kind());
        var now = time.GetTimestamp();
        int suppressed;
        lock (k)
        {
            if (k.LastLogged != long.MinValue && time.GetElapsedTime(k.LastLogged, now) < interval)
            {
                k.Suppressed++;
                return;
            }

            k.LastLogged = now;
            suppressed = k.Suppressed;
            k.Suppressed = 0;
        }

        if (suppressed > 0)
        {
            log.LogWarning("{Message} ({Suppressed} more {Kind} refusals since the last line)", message, suppressed, kind);
        }
        else
        {
            log.LogWarning("{Message}", message);
        }
    }
}
