using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// DescribeClientQuotas (KIP-546): the entities of the metadata image's quota table that match
/// every filter component (exact name, default, or any; strict: no parts besides those named),
/// with their quotas, as Kafka's <c>ClientQuotasImage.describe</c>. Needs DESCRIBE_CONFIGS on the
/// cluster. A malformed filter is answered with INVALID_REQUEST, an unknown entity type with
/// UNSUPPORTED_VERSION, on the whole response.
/// </summary>
internal sealed class DescribeClientQuotasHandler(BrokerState state) : IApiHandler<DescribeClientQuotasRequest, DescribeClientQuotasResponse>
{
    /// <summary>Match type: the entity part has exactly this name.</summary>
    public const sbyte MatchExact = 0;

    /// <summary>Match type: the entity part is the default.</summary>
    public const sbyte MatchDefault = 1;

    /// <summary>Match type: the entity has the part, named or default.</summary>
    public const sbyte MatchSpecified = 2;

    /// <inheritdoc/>
    public ValueTask<DescribeClientQuotasResponse> HandleAsync(RequestContext context, DescribeClientQuotasRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DescribeClientQuotasResponse ErrorResponse(RequestContext context, DescribeClientQuotasRequest request, ErrorCode error) => Error(error, null);

    private DescribeClientQuotasResponse Handle(in RequestContext context, DescribeClientQuotasRequest request)
    {
        if (!state.Authorizer.Authorize(context, AclOperation.DescribeConfigs, ResourceType.Cluster, AuthorizedOperations.ClusterName))
        {
            return Error(ErrorCode.ClusterAuthorizationFailed, null);
        }

        var exact = new Dictionary<string, string?>(StringComparer.Ordinal);
        var specified = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in request.Components)
        {
            if (c.EntityType.Length == 0)
            {
                return Error(ErrorCode.InvalidRequest, "Invalid empty entity type.");
            }

            if (exact.ContainsKey(c.EntityType) || specified.Contains(c.EntityType))
            {
                return Error(ErrorCode.InvalidRequest, $"Entity type {c.EntityType} cannot appear more than once in the filter.");
            }

            if (c.EntityType is not (QuotaEntity.UserType or QuotaEntity.ClientIdType or QuotaEntity.IpType))
            {
                return Error(ErrorCode.UnsupportedVersion, $"Unsupported entity type {c.EntityType}");
            }

            switch (c.MatchType)
            {
                case MatchExact when c.Match is null:
                    return Error(ErrorCode.InvalidRequest, "Request specified MATCH_TYPE_EXACT, but set match string to null.");
                case MatchExact:
                    exact[c.EntityType] = c.Match;
                    break;
                case MatchDefault when c.Match is not null:
                    return Error(ErrorCode.InvalidRequest, "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.");
                case MatchDefault:
                    exact[c.EntityType] = null;
                    break;
                case MatchSpecified when c.Match is not null:
                    return Error(ErrorCode.InvalidRequest, "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.");
                case MatchSpecified:
                    specified.Add(c.EntityType);
                    break;
                default:
                    return Error(ErrorCode.InvalidRequest, $"Unknown match type {c.MatchType}");
            }
        }

        bool Has(string type) => exact.ContainsKey(type) || specified.Contains(type);
        if (Has(QuotaEntity.IpType) && (Has(QuotaEntity.UserType) || Has(QuotaEntity.ClientIdType)))
        {
            return Error(ErrorCode.InvalidRequest, "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.");
        }

        var response = new DescribeClientQuotasResponse { ErrorMessage = null };
        foreach (var (entity, values) in state.Topics.Image.ClientQuotas.Entities)
        {
            if (!Matches(entity, exact, specified, request.Strict))
            {
                continue;
            }

            var entry = new DescribeClientQuotasResponse.EntryData();
            foreach (var (type, name) in entity.Parts())
            {
                entry.Entity.Add(new DescribeClientQuotasResponse.EntityData { EntityType = type, EntityName = name });
            }

            foreach (var (key, value) in values.OrderBy(v => v.Key, StringComparer.Ordinal))
            {
                entry.Values.Add(new DescribeClientQuotasResponse.ValueData { Key = key, Value = value });
            }

            response.Entries!.Add(entry);
        }

        return response;
    }

    private static bool Matches(QuotaEntity entity, Dictionary<string, string?> exact, HashSet<string> specified, bool strict)
    {
        if (strict && entity.Count != exact.Count + specified.Count)
        {
            return false;
        }

        foreach (var (type, name) in exact)
        {
            var part = entity.Part(type);
            if (!part.Specified || !string.Equals(part.Name, name, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return specified.All(type => entity.Part(type).Specified);
    }

    private static DescribeClientQuotasResponse Error(ErrorCode error, string? message) =>
        new() { ErrorCode = (short)error, ErrorMessage = message, Entries = null };
}
