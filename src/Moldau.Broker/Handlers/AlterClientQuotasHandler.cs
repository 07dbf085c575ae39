using System.Net;
using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Metadata;

namespace Moldau.Broker.Handlers;

/// <summary>
/// AlterClientQuotas (KIP-546): sets or removes quotas of user, client-id, user and client-id, or
/// ip entities (a null name is the default entity), recorded as ClientQuotaRecords. Each entry is
/// checked on its own, as Kafka's <c>ClientQuotaControlManager</c>: an empty entity, an unknown or
/// repeated entity type, ip combined with another type, an empty name, an unknown key for the
/// entity, a key given twice, or a value that is not positive (or not whole for a byte or
/// connection rate) fails that entry with INVALID_REQUEST; the valid entries are applied
/// (validate_only: only checked). Needs ALTER_CONFIGS on the cluster.
/// </summary>
internal sealed class AlterClientQuotasHandler(BrokerState state) : IApiHandler<AlterClientQuotasRequest, AlterClientQuotasResponse>
{
    // Keys per entity kind, and whether the value must be whole (Kafka's LONG and INT types).
    private static readonly Dictionary<string, bool> ClientKeys = new(StringComparer.Ordinal)
    {
        [ClientQuotaTable.ProducerByteRate] = true,
        [ClientQuotaTable.ConsumerByteRate] = true,
        [ClientQuotaTable.RequestPercentage] = false,
        [ClientQuotaTable.ControllerMutationRate] = false,
    };

    private static readonly Dictionary<string, bool> IpKeys = new(StringComparer.Ordinal)
    {
        [ClientQuotaTable.ConnectionCreationRate] = true,
    };

    /// <inheritdoc/>
    public ValueTask<AlterClientQuotasResponse> HandleAsync(RequestContext context, AlterClientQuotasRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public AlterClientQuotasResponse ErrorResponse(RequestContext context, AlterClientQuotasRequest request, ErrorCode error)
    {
        var response = new AlterClientQuotasResponse();
        foreach (var entry in request.Entries)
        {
            response.Entries.Add(Result(entry, error, null));
        }

        return response;
    }

    private AlterClientQuotasResponse Handle(in RequestContext context, AlterClientQuotasRequest request)
    {
        if (!state.Authorizer.Authorize(context, AclOperation.AlterConfigs, ResourceType.Cluster, AuthorizedOperations.ClusterName))
        {
            return ErrorResponse(context, request, ErrorCode.ClusterAuthorizationFailed);
        }

        var response = new AlterClientQuotasResponse();
        var records = new List<ClientQuotaRecord>();
        var current = state.Topics.Image.ClientQuotas;
        foreach (var entry in request.Entries)
        {
            var (error, message) = Validate(entry);
            response.Entries.Add(Result(entry, error, message));
            if (error != ErrorCode.None || request.ValidateOnly)
            {
                continue;
            }

            var entity = QuotaEntity.Of(entry.Entity.Select(e => (e.EntityType, e.EntityName)))!.Value;
            current.Entities.TryGetValue(entity, out var existing);
            foreach (var op in entry.Ops)
            {
                // Removing a key that isn't set changes nothing: no record.
                if (op.Remove && existing?.ContainsKey(op.Key) != true)
                {
                    continue;
                }

                records.Add(new ClientQuotaRecord
                {
                    Entity = [.. entry.Entity.Select(e => new ClientQuotaRecord.EntityData { EntityType = e.EntityType, EntityName = e.EntityName })],
                    Key = op.Key,
                    Value = op.Remove ? 0 : op.Value,
                    Remove = op.Remove,
                });
            }
        }

        state.Topics.AlterClientQuotas(records);
        return response;
    }

    private static (ErrorCode Error, string? Message) Validate(AlterClientQuotasRequest.EntryData entry)
    {
        if (entry.Entity.Count == 0)
        {
            return (ErrorCode.InvalidRequest, "Invalid empty client quota entity");
        }

        var types = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in entry.Entity)
        {
            if (!types.Add(e.EntityType))
            {
                return (ErrorCode.InvalidRequest, $"Invalid client quota entity, duplicate entity entry {e.EntityType}");
            }

            if (e.EntityType is not (QuotaEntity.UserType or QuotaEntity.ClientIdType or QuotaEntity.IpType))
            {
                return (ErrorCode.InvalidRequest, $"Unhandled client quota entity type: {e.EntityType}");
            }

            if (e.EntityName is { Length: 0 })
            {
                return (ErrorCode.InvalidRequest, $"Empty {e.EntityType} not supported");
            }

            if (e.EntityType == QuotaEntity.IpType && e.EntityName is not null && !IPAddress.TryParse(e.EntityName, out _))
            {
                return (ErrorCode.InvalidRequest, $"{e.EntityName} is not a valid IP address");
            }
        }

        var isIp = types.Contains(QuotaEntity.IpType);
        if (isIp && types.Count > 1)
        {
            return (ErrorCode.InvalidRequest, "Invalid quota entity combination, IP entity should not be combined with User or ClientId");
        }

        var keys = isIp ? IpKeys : ClientKeys;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var op in entry.Ops)
        {
            if (!keys.TryGetValue(op.Key, out var whole))
            {
                return (ErrorCode.InvalidRequest, $"Invalid configuration key {op.Key}");
            }

            if (!seen.Add(op.Key))
            {
                return (ErrorCode.InvalidRequest, $"Duplicate quota key {op.Key}");
            }

            if (op.Remove)
            {
                continue;
            }

            if (!(op.Value > 0) || double.IsInfinity(op.Value))
            {
                return (ErrorCode.InvalidRequest, $"Quota {op.Key} must be greater than 0, was {op.Value}");
            }

            if (whole && (op.Value != Math.Floor(op.Value) || op.Value > long.MaxValue))
            {
                return (ErrorCode.InvalidRequest, $"Invalid value {op.Value} for configuration key {op.Key}, must be a whole number");
            }
        }

        return (ErrorCode.None, null);
    }

    private static AlterClientQuotasResponse.EntryData Result(AlterClientQuotasRequest.EntryData entry, ErrorCode error, string? message) => new()
    {
        ErrorCode = (short)error,
        ErrorMessage = message,
        Entity = [.. entry.Entity.Select(e => new AlterClientQuotasResponse.EntityData { EntityType = e.EntityType, EntityName = e.EntityName })],
    };
}
