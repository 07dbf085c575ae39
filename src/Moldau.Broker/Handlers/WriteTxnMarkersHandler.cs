using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Broker.Handlers;

/// <summary>
/// WriteTxnMarkers: writes the COMMIT or ABORT markers asked for into this broker's partitions and
/// answers once they are durable. Kafka's coordinators send it to partition leaders; clients send
/// it through the admin client's abortTransaction (a hanging transaction). Needs Alter or
/// ClusterAction on the cluster, as Kafka checks.
/// </summary>
internal sealed class WriteTxnMarkersHandler(BrokerState state) : IApiHandler<WriteTxnMarkersRequest, WriteTxnMarkersResponse>
{
    /// <inheritdoc/>
    public ValueTask<WriteTxnMarkersResponse> HandleAsync(RequestContext context, WriteTxnMarkersRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public WriteTxnMarkersResponse ErrorResponse(RequestContext context, WriteTxnMarkersRequest request, ErrorCode error) =>
        new() { Markers = [.. request.Markers.Select(m => Result(m.ProducerId, m.Topics.SelectMany(t => t.PartitionIndexes.Select(p => (t.Name, p, error)))))] };

    private async Task<WriteTxnMarkersResponse> HandleAsync(RequestContext context, WriteTxnMarkersRequest request)
    {
        if (!state.Authorizer.OnCluster(context, AclOperation.Alter) && !state.Authorizer.OnCluster(context, AclOperation.ClusterAction))
        {
            return ErrorResponse(context, request, ErrorCode.ClusterAuthorizationFailed);
        }

        var response = new WriteTxnMarkersResponse();
        foreach (var m in request.Markers)
        {
            var partitions = m.Topics.SelectMany(t => t.PartitionIndexes.Select(p => (t.Name, p))).ToList();
            var written = await state.TransactionMarkers.WriteMarkersAsync(m.ProducerId, m.ProducerEpoch, m.CoordinatorEpoch, m.TransactionResult ? ControlRecordType.Commit : ControlRecordType.Abort, partitions).ConfigureAwait(false);
            response.Markers.Add(Result(m.ProducerId, written));
        }

        return response;
    }

    private static WriteTxnMarkersResponse.WritableTxnMarkerResult Result(long producerId, IEnumerable<(string Topic, int Partition, ErrorCode Error)> errors) => new()
    {
        ProducerId = producerId,
        Topics = [.. errors.GroupBy(e => e.Topic, StringComparer.Ordinal).Select(g => new WriteTxnMarkersResponse.WritableTxnMarkerTopicResult
        {
            Name = g.Key,
            Partitions = [.. g.Select(e => new WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult { PartitionIndex = e.Partition, ErrorCode = (short)e.Error })],
        })],
    };
}
