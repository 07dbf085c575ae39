using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Cli.Client;

/// <summary>
/// The brokers the CLI talks to: a bootstrap connection for metadata and cluster-wide requests,
/// and one connection per broker for what must go to a partition's leader or a group's coordinator.
/// </summary>
public sealed class KafkaCluster : IAsyncDisposable
{
    private readonly ClientSettings _settings;
    private readonly Dictionary<int, KafkaConnection> _nodes = [];
    private readonly Dictionary<int, (string Host, int Port)> _addresses = [];
    private KafkaConnection? _any;

    /// <summary>Uses <paramref name="settings"/> to connect.</summary>
    public KafkaCluster(ClientSettings settings) => _settings = settings;

    /// <summary>The settings in use.</summary>
    public ClientSettings Settings => _settings;

    /// <summary>A connection to any bootstrap broker (the first that answers).</summary>
    public async Task<KafkaConnection> AnyAsync(CancellationToken cancellationToken)
    {
        if (_any is not null)
        {
            return _any;
        }

        CliException? last = null;
        foreach (var (host, port) in _settings.Bootstrap)
        {
            try
            {
                _any = await KafkaConnection.ConnectAsync(host, port, _settings, cancellationToken);
                return _any;
            }
            catch (CliException e) when (e.ExitCode == ExitCodes.Unreachable)
            {
                last = e;
            }
        }

        throw last ?? new CliException(ExitCodes.Usage, "no bootstrap servers");
    }

    /// <summary>Metadata for <paramref name="topics"/> (null: all topics).</summary>
    public async Task<MetadataResponse> MetadataAsync(IEnumerable<string>? topics, CancellationToken cancellationToken)
    {
        var c = await AnyAsync(cancellationToken);
        var v = c.Version(ApiKey.Metadata, 12, 1);
        var request = new MetadataRequest
        {
            Topics = topics?.Select(t => new MetadataRequest.MetadataRequestTopic { Name = t }).ToList(),
            AllowAutoTopicCreation = false,
        };
        var response = await c.SendAsync<MetadataResponse>(ApiKey.Metadata, v, request, cancellationToken);
        foreach (var b in response.Brokers)
        {
            _addresses[b.NodeId] = (b.Host, b.Port);
        }

        return response;
    }

    /// <summary>Metadata of one topic; UNKNOWN_TOPIC_OR_PARTITION and others become a <see cref="CliException"/>.</summary>
    public async Task<MetadataResponse.MetadataResponseTopic> TopicAsync(string topic, CancellationToken cancellationToken)
    {
        var md = await MetadataAsync([topic], cancellationToken);
        var t = md.Topics.FirstOrDefault(t => t.Name == topic) ?? throw new CliException(ExitCodes.NotFound, $"topic '{topic}': UNKNOWN_TOPIC_OR_PARTITION");
        CliException.ThrowIf(t.ErrorCode, $"topic '{topic}'");
        return t;
    }

    /// <summary>A connection to broker <paramref name="nodeId"/> (from the last metadata).</summary>
    public async Task<KafkaConnection> NodeAsync(int nodeId, CancellationToken cancellationToken)
    {
        if (_nodes.TryGetValue(nodeId, out var c))
        {
            return c;
        }

        if (!_addresses.ContainsKey(nodeId))
        {
            await MetadataAsync([], cancellationToken);
        }

        if (!_addresses.TryGetValue(nodeId, out var address))
        {
            throw new CliException(ExitCodes.Failed, $"broker {nodeId} is not in the cluster's metadata");
        }

        c = await KafkaConnection.ConnectAsync(address.Host, address.Port, _settings, cancellationToken);
        _nodes[nodeId] = c;
        return c;
    }

    /// <summary>The ids of all brokers.</summary>
    public async Task<IReadOnlyList<int>> BrokerIdsAsync(CancellationToken cancellationToken) =>
        (await MetadataAsync([], cancellationToken)).Brokers.Select(b => b.NodeId).ToList();

    /// <summary>A connection to the coordinator of <paramref name="group"/>, retried while it loads.</summary>
    public async Task<KafkaConnection> CoordinatorAsync(string group, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var c = await AnyAsync(cancellationToken);
            var v = c.Version(ApiKey.FindCoordinator, 4);
            var request = v >= 4 ? new FindCoordinatorRequest { CoordinatorKeys = [group] } : new FindCoordinatorRequest { Key = group };
            var r = await c.SendAsync<FindCoordinatorResponse>(ApiKey.FindCoordinator, v, request, cancellationToken);
            var (error, nodeId, host, port, message) = v >= 4
                ? (r.Coordinators[0].ErrorCode, r.Coordinators[0].NodeId, r.Coordinators[0].Host, r.Coordinators[0].Port, r.Coordinators[0].ErrorMessage)
                : (r.ErrorCode, r.NodeId, r.Host, r.Port, r.ErrorMessage);
            if (error is (short)ErrorCode.CoordinatorNotAvailable or (short)ErrorCode.CoordinatorLoadInProgress && attempt < 20)
            {
                await Task.Delay(250, cancellationToken);
                continue;
            }

            CliException.ThrowIf(error, $"coordinator of group '{group}'", message);
            _addresses[nodeId] = (host, port);
            return await NodeAsync(nodeId, cancellationToken);
        }
    }

    /// <summary>
    /// ListOffsets for the partitions of <paramref name="topic"/> at <paramref name="timestamp"/>
    /// (-2 earliest, -1 latest, else the first offset at or after that time), asking each leader.
    /// </summary>
    public async Task<Dictionary<int, long>> OffsetsAsync(MetadataResponse.MetadataResponseTopic topic, IEnumerable<int> partitions, long timestamp, CancellationToken cancellationToken)
    {
        var result = new Dictionary<int, long>();
        var byLeader = topic.Partitions.Where(p => partitions.Contains(p.PartitionIndex)).GroupBy(p => p.LeaderId);
        foreach (var group in byLeader)
        {
            if (group.Key < 0)
            {
                foreach (var p in group)
                {
                    result[p.PartitionIndex] = -1;
                }

                continue;
            }

            var c = await NodeAsync(group.Key, cancellationToken);
            var v = c.Version(ApiKey.ListOffsets, 8, 1);
            var request = new ListOffsetsRequest
            {
                ReplicaId = -1,
                Topics =
                [
                    new ListOffsetsRequest.ListOffsetsTopic
                    {
                        Name = topic.Name!,
                        Partitions = group.Select(p => new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = p.PartitionIndex, Timestamp = timestamp }).ToList(),
                    },
                ],
            };
            var r = await c.SendAsync<ListOffsetsResponse>(ApiKey.ListOffsets, v, request, cancellationToken);
            foreach (var p in r.Topics.SelectMany(t => t.Partitions))
            {
                CliException.ThrowIf(p.ErrorCode, $"offsets of {topic.Name}-{p.PartitionIndex}");
                result[p.PartitionIndex] = p.Offset;
            }
        }

        return result;
    }

    /// <summary>Closes every connection.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var c in _nodes.Values)
        {
            await c.DisposeAsync();
        }

        if (_any is not null)
        {
            await _any.DisposeAsync();
        }
    }
}
