using System.Diagnostics.Metrics;
using System.Text;
using Moldau.Protocol;

namespace Moldau.Broker.Metrics;

/// <summary>
/// Kafka's RequestMetrics (kafka.network:type=RequestMetrics) per API: requests per version,
/// error codes, and where a request's time went (total, request queue, local, remote, response
/// send, throttle), as the Prometheus JMX exporter names them. The connection loop calls
/// <see cref="Completed"/> once per answered request: counts go into arrays with interlocked adds
/// and are read at scrape time; the times go into histograms with a tag cached per API, so a
/// request costs no allocation and no lock.
/// </summary>
public sealed class RequestMetrics
{
    /// <summary>Error code columns per API: codes -1..253, one past the last for anything larger.</summary>
    public const int ErrorColumns = 256;

    private const int Versions = 32;

    private static readonly double[] MillisecondBuckets = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];

    private readonly int _apis;
    private readonly long[] _requests;
    private readonly long[] _errors;
    private readonly KeyValuePair<string, object?>[] _tags;
    private readonly string[] _names;
    private readonly Histogram<double> _total;
    private readonly Histogram<double> _queue;
    private readonly Histogram<double> _local;
    private readonly Histogram<double> _remote;
    private readonly Histogram<double> _send;
    private readonly Histogram<double> _throttle;
    private readonly double _ticksPerMs;

    /// <summary>The instruments on <paramref name="meter"/>; timestamps are <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>'s.</summary>
    internal RequestMetrics(Meter meter)
    {
        _apis = Enum.GetValues<ApiKey>().Max(k => (int)k) + 1;
        _requests = new long[_apis * Versions];
        _errors = new long[_apis * ErrorColumns];
        _names = new string[_apis];
        _tags = new KeyValuePair<string, object?>[_apis];
        for (var i = 0; i < _apis; i++)
        {
            // Kafka names its fetch metrics FetchConsumer and FetchFollower; Moldau has no followers.
            _names[i] = (ApiKey)i == ApiKey.Fetch ? "FetchConsumer" : Enum.IsDefined((ApiKey)i) ? ((ApiKey)i).ToString() : i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _tags[i] = new("request", _names[i]);
        }

        _ticksPerMs = System.Diagnostics.Stopwatch.Frequency / 1000.0;
        var advice = new InstrumentAdvice<double> { HistogramBucketBoundaries = MillisecondBuckets };
        _total = meter.CreateHistogram("kafka_network_requestmetrics_totaltimems", null, "Time from a request's last byte received to its response's last byte written, in ms (Kafka's TotalTimeMs).", null, advice);
        _queue = meter.CreateHistogram("kafka_network_requestmetrics_requestqueuetimems", null, "Time a received request waited for the requests before it on its connection (produce ordering, lanes), in ms (RequestQueueTimeMs).", null, advice);
        _local = meter.CreateHistogram("kafka_network_requestmetrics_localtimems", null, "Time the handler worked on the request before it returned or started waiting, in ms (LocalTimeMs).", null, advice);
        _remote = meter.CreateHistogram("kafka_network_requestmetrics_remotetimems", null, "Time the request waited after its handler returned (acks=all fsync, fetch long poll, coordinator writes) until its response was ready to send, including responses before it on the connection, in ms (RemoteTimeMs + ResponseQueueTimeMs).", null, advice);
        _send = meter.CreateHistogram("kafka_network_requestmetrics_responsesendtimems", null, "Time to write the response to the socket, in ms (ResponseSendTimeMs).", null, advice);
        _throttle = meter.CreateHistogram("kafka_network_requestmetrics_throttletimems", null, "Throttle time a quota put on a response, in ms (ThrottleTimeMs); only throttled responses are recorded.", null, advice);
        meter.CreateObservableCounter("kafka_network_requestmetrics_requests", ObserveRequests, null, "Requests answered, per API and version (Kafka's RequestsPerSec).");
        meter.CreateObservableCounter("kafka_network_requestmetrics_errors", ObserveErrors, null, "Error codes other than NONE in responses, per API and error, counted per partition or item as Kafka's ErrorsPerSec does.");
    }

    /// <summary>The counts of <paramref name="api"/>'s error codes, for <see cref="ErrorWalker{T}"/>.</summary>
    internal ErrorTally ErrorsOf(ApiKey api) => new(_errors, (int)api * ErrorColumns);

    /// <summary>A throttle of <paramref name="ms"/> put on a response of <paramref name="api"/>.</summary>
    internal void Throttled(ApiKey api, int ms)
    {
        if ((uint)api < (uint)_apis)
        {
            _throttle.Record(ms, _tags[(int)api]);
        }
    }

    /// <summary>
    /// A request of <paramref name="apiKey"/> v<paramref name="version"/> answered: timestamps of
    /// its last byte received, its dispatch, its handler's return, its response ready to be
    /// written, and its response written (0 where unknown).
    /// </summary>
    public void Completed(short apiKey, short version, long received, long dispatched, long returned, long ready, long written)
    {
        if ((uint)apiKey >= (uint)_apis)
        {
            return;
        }

        if ((uint)version < Versions)
        {
            Interlocked.Increment(ref _requests[(apiKey * Versions) + version]);
        }

        var tag = _tags[apiKey];
        _total.Record((written - received) / _ticksPerMs, tag);
        if (dispatched != 0)
        {
            _queue.Record((dispatched - received) / _ticksPerMs, tag);
            _local.Record((returned - dispatched) / _ticksPerMs, tag);
            _remote.Record((ready - returned) / _ticksPerMs, tag);
        }

        _send.Record((written - ready) / _ticksPerMs, tag);
    }

    /// <summary>Kafka's name of an error code: UNKNOWN_TOPIC_OR_PARTITION for UnknownTopicOrPartition.</summary>
    public static string ErrorName(int code)
    {
        if (!Enum.IsDefined((ErrorCode)code))
        {
            return code.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        var name = ((ErrorCode)code).ToString();
        var text = new StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]) && (char.IsLower(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1]))))
            {
                text.Append('_');
            }

            text.Append(char.ToUpperInvariant(name[i]));
        }

        return text.ToString();
    }

    private IEnumerable<Measurement<long>> ObserveRequests()
    {
        for (var api = 0; api < _apis; api++)
        {
            for (var version = 0; version < Versions; version++)
            {
                var count = Volatile.Read(ref _requests[(api * Versions) + version]);
                if (count > 0)
                {
                    yield return new(count, _tags[api], new("version", version.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                }
            }
        }
    }

    private IEnumerable<Measurement<long>> ObserveErrors()
    {
        for (var api = 0; api < _apis; api++)
        {
            for (var column = 0; column < ErrorColumns; column++)
            {
                var count = Volatile.Read(ref _errors[(api * ErrorColumns) + column]);
                if (count > 0)
                {
                    yield return new(count, _tags[api], new("error", ErrorName(column - 1)));
                }
            }
        }
    }
}
