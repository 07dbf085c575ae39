using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DescribeLogDirs: each log dir with its partitions' sizes (null topics: all).</summary>
internal sealed class DescribeLogDirsHandler(BrokerState state) : IApiHandler<DescribeLogDirsRequest, DescribeLogDirsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DescribeLogDirsResponse> HandleAsync(RequestContext context, DescribeLogDirsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DescribeLogDirsResponse ErrorResponse(RequestContext context, DescribeLogDirsRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error };

    public DescribeLogDirsResponse Handle(RequestContext context, DescribeLogDirsRequest request)
    {
        var response = new DescribeLogDirsResponse();
        // Describe on the cluster, as Kafka: without it, no directories (and v3+ says why).
        if (!state.Authorizer.OnCluster(context, AclOperation.Describe))
        {
            response.ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed;
            return response;
        }

        var wanted = request.Topics?.ToDictionary(t => t.Topic, t => t.Partitions.ToHashSet(), StringComparer.Ordinal);
        foreach (var dir in state.Options.LogDirs)
        {
            var full = Path.GetFullPath(dir);
            var result = new DescribeLogDirsResponse.DescribeLogDirsResult { LogDir = full };
            try
            {
                var drive = new DriveInfo(full);
                result.TotalBytes = drive.TotalSize;
                result.UsableBytes = drive.AvailableFreeSpace;
            }
            catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
            {
            }

            foreach (var topic in state.Topics.Topics.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                if (wanted is not null && !wanted.ContainsKey(topic.Name))
                {
                    continue;
                }

                var partitions = topic.Partitions
                    .Where(p => wanted is null || wanted[topic.Name].Contains(p.Index))
                    .Select(p => (p.Index, Log: state.Topics.LogOf(p)))
                    .Where(p => p.Log is { } l && Path.GetFullPath(Path.GetDirectoryName(l.Directory)!) == full)
                    .Select(p => new DescribeLogDirsResponse.DescribeLogDirsPartition { PartitionIndex = p.Index, PartitionSize = p.Log!.SizeInBytes, OffsetLag = 0 })
                    .ToList();
                if (partitions.Count > 0)
                {
                    result.Topics.Add(new DescribeLogDirsResponse.DescribeLogDirsTopic { Name = topic.Name, Partitions = partitions });
                }
            }

            response.Results.Add(result);
        }

        return response;
    }
}
