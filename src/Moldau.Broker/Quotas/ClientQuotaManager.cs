using System.Collections.Concurrent;
using System.Diagnostics;
using Moldau.Broker.Handlers;
using Moldau.Broker.Topics;
using Moldau.Protocol;

namespace Moldau.Broker.Quotas;

/// <summary>
/// Enforces the client quotas of the metadata image as Kafka's quota managers do: produce bytes
/// (request size) against producer_byte_rate, fetch bytes (response size) against
/// consumer_byte_rate, request handling time against request_percentage, partition mutations
/// against controller_mutation_rate. Usage is measured per quota entity (<see cref="ClientQuotaTable.Resolve"/>'s
/// tags) over Kafka's windows; a client above its quota gets a throttle time in the response and
/// its connection is muted for that long (<see cref="ConnectionSession.Throttle"/>, KIP-219).
/// With no user or client-id quota set, <see cref="Active"/> is false and nothing runs per request.
/// </summary>
internal sealed class ClientQuotaManager(TopicRegistry topics, TimeProvider time)
{
    /// <summary>request_percentage throttles at most one window, as Kafka's ClientRequestQuotaManager.</summary>
    public const long MaxRequestThrottleMs = QuotaWindows.WindowMs;

    private const double NanosToPercentage = 100.0 / 1_000_000_000;

    private readonly ConcurrentDictionary<(string Key, string User, string Client), QuotaRate> _rates = new();
    private readonly ConcurrentDictionary<(string User, string Client), MutationTokenBucket> _buckets = new();

    /// <summary>Whether any user or client-id quota is set (the one check on the request path when none is).</summary>
    public bool Active => topics.Image.ClientQuotas.HasClientQuotas;

    /// <summary>
    /// Records what a request used against its quotas and returns the time the client is throttled
    /// for (0: none). Called once the handler has answered, before the response is encoded. A
    /// throttled fetch answers no records (Kafka's throttled fetch response is empty) and what it
    /// would have sent is not counted.
    /// </summary>
    /// <param name="context">The request.</param>
    /// <param name="api">Its API.</param>
    /// <param name="response">The handler's response.</param>
    /// <param name="requestBytes">The request frame's size.</param>
    /// <param name="handlerTicks">The time the handler ran (<see cref="Stopwatch"/> ticks).</param>
    public int OnResponse(in RequestContext context, ApiKey api, IKafkaMessage response, int requestBytes, long handlerTicks)
    {
        var table = topics.Image.ClientQuotas;
        if (!table.HasClientQuotas)
        {
            return 0;
        }

        var user = UserOf(context.Session.Principal);
        var client = context.Session.ClientId ?? string.Empty;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        long bandwidth = 0;
        QuotaRate? fetchRate = null;
        var fetchBytes = 0;
        if (api == ApiKey.Produce && table.HasProducerQuota)
        {
            bandwidth = Record(table, ClientQuotaTable.ProducerByteRate, user, client, requestBytes, now, out _);
        }
        else if (api == ApiKey.Fetch && table.HasConsumerQuota && response is FetchReply)
        {
            fetchBytes = response.Size(context.Version);
            bandwidth = Record(table, ClientQuotaTable.ConsumerByteRate, user, client, fetchBytes, now, out fetchRate);
        }

        long request = 0;
        if (table.HasRequestQuota)
        {
            var nanos = handlerTicks * (1_000_000_000.0 / Stopwatch.Frequency);
            request = Math.Min(MaxRequestThrottleMs, Record(table, ClientQuotaTable.RequestPercentage, user, client, nanos * NanosToPercentage, now, out _));
        }

        var throttle = (int)Math.Min(int.MaxValue, Math.Max(bandwidth, request));
        if (throttle > 0 && response is FetchReply fetch)
        {
            // Kafka answers a throttled fetch without data, and takes back what it recorded for it.
            if (fetchRate is not null)
            {
                lock (fetchRate)
                {
                    fetchRate.Record(-fetchBytes, now);
                }
            }

            foreach (var topic in fetch.Response.Responses)
            {
                foreach (var partition in topic.Partitions)
                {
                    partition.Records = null;
                }
            }
        }

        return throttle;
    }

    /// <summary>
    /// The controller_mutation_rate quota of a CreateTopics, CreatePartitions or DeleteTopics
    /// request, or null when none applies. <paramref name="strict"/>: the request version lets the
    /// client handle THROTTLING_QUOTA_EXCEEDED (CreateTopics v6+, CreatePartitions v3+, DeleteTopics
    /// v5+): a mutation while the quota is exceeded is refused; older versions are only throttled.
    /// </summary>
    public MutationQuota? MutationQuotaFor(in RequestContext context, bool strict)
    {
        var table = topics.Image.ClientQuotas;
        if (!table.HasMutationQuota)
        {
            return null;
        }

        var user = UserOf(context.Session.Principal);
        var client = context.Session.ClientId ?? string.Empty;
        if (table.Resolve(ClientQuotaTable.ControllerMutationRate, user, client) is not { } quota)
        {
            return null;
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var bucket = _buckets.GetOrAdd((quota.UserTag, quota.ClientTag), _ => new MutationTokenBucket(quota.Bound, now));
        return new MutationQuota(bucket, quota.Bound, strict, time);
    }

    /// <summary>The user entity of a principal: its name without the type ("User:alice" is "alice"), as Kafka's quota entity.</summary>
    public static string UserOf(string principal)
    {
        var colon = principal.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? principal : principal[(colon + 1)..];
    }

    private long Record(ClientQuotaTable table, string key, string user, string client, double value, long now, out QuotaRate? rate)
    {
        rate = null;
        if (table.Resolve(key, user, client) is not { } quota)
        {
            return 0;
        }

        rate = _rates.GetOrAdd((key, quota.UserTag, quota.ClientTag), _ => new QuotaRate());
        lock (rate)
        {
            return rate.RecordAndThrottle(value, now, quota.Bound);
        }
    }
}

/// <summary>
/// The controller mutation quota of one request (Kafka's <c>StrictControllerMutationQuota</c> and
/// <c>PermissiveControllerMutationQuota</c>): each topic's partitions are recorded as they are
/// created or deleted; <see cref="ThrottleTimeMs"/> goes in the response.
/// </summary>
internal sealed class MutationQuota(MutationTokenBucket bucket, double rate, bool strict, TimeProvider time)
{
    /// <summary>The throttle time the request ends with (0: none).</summary>
    public int ThrottleTimeMs { get; private set; }

    /// <summary>
    /// Records <paramref name="partitions"/> mutations. Strict: false, recording nothing, when the
    /// quota is already exceeded (answer THROTTLING_QUOTA_EXCEEDED). Permissive: always true; the
    /// request is throttled if the quota is exceeded after it.
    /// </summary>
    public bool TryRecord(int partitions)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (bucket)
        {
            if (strict)
            {
                var throttle = bucket.ThrottleMs(now, rate);
                if (throttle > 0)
                {
                    ThrottleTimeMs = (int)Math.Min(int.MaxValue, throttle);
                    return false;
                }

                bucket.Record(partitions, now, rate);
                return true;
            }

            bucket.Record(partitions, now, rate);
            ThrottleTimeMs = (int)Math.Min(int.MaxValue, bucket.ThrottleMs(now, rate));
            return true;
        }
    }

    /// <summary>Kafka's message for THROTTLING_QUOTA_EXCEEDED.</summary>
    public const string ExceededMessage = "The throttling quota has been exceeded.";
}
