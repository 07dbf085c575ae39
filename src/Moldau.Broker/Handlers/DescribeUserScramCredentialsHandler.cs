using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// DescribeUserScramCredentials v0 (KIP-554): each user's SCRAM mechanisms and iteration counts
/// (never salts or keys). No users (null or empty) describes every user with a credential. As
/// Kafka: DESCRIBE on the cluster is required (else CLUSTER_AUTHORIZATION_FAILED at the top); a
/// user named twice is DUPLICATE_RESOURCE, a user with no credential RESOURCE_NOT_FOUND.
/// </summary>
internal sealed class DescribeUserScramCredentialsHandler(BrokerState state) : IApiHandler<DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DescribeUserScramCredentialsResponse> HandleAsync(RequestContext context, DescribeUserScramCredentialsRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DescribeUserScramCredentialsResponse ErrorResponse(RequestContext context, DescribeUserScramCredentialsRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error, ErrorMessage = null };

    private DescribeUserScramCredentialsResponse Handle(RequestContext context, DescribeUserScramCredentialsRequest request)
    {
        if (!state.Authorizer.Authorize(context, AclOperation.Describe, ResourceType.Cluster, AuthorizedOperations.ClusterName))
        {
            return new() { ErrorCode = (short)ErrorCode.ClusterAuthorizationFailed, ErrorMessage = null };
        }

        var table = state.Topics.Image.ScramCredentials;
        var response = new DescribeUserScramCredentialsResponse { ErrorMessage = null };
        if (request.Users is null or { Count: 0 })
        {
            foreach (var (user, credentials) in table.Users)
            {
                response.Results.Add(Described(user, credentials.Values));
            }

            return response;
        }

        var counts = request.Users.GroupBy(u => u.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in request.Users.Select(u => u.Name))
        {
            if (!seen.Add(name))
            {
                continue;
            }

            if (counts[name] > 1)
            {
                response.Results.Add(new() { User = name, ErrorCode = (short)ErrorCode.DuplicateResource, ErrorMessage = $"Cannot describe SCRAM credentials for the same user twice in a single request: {name}" });
            }
            else if (!table.Users.TryGetValue(name, out var credentials))
            {
                response.Results.Add(new() { User = name, ErrorCode = (short)ErrorCode.ResourceNotFound, ErrorMessage = $"Attempt to describe a user credential that does not exist: {name}" });
            }
            else
            {
                response.Results.Add(Described(name, credentials.Values));
            }
        }

        return response;
    }

    private static DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult Described(string user, IEnumerable<Moldau.Security.Sasl.ScramCredential> credentials) => new()
    {
        User = user,
        ErrorMessage = null,
        CredentialInfos = [.. credentials.OrderBy(c => c.Mechanism.Type).Select(c => new DescribeUserScramCredentialsResponse.CredentialInfo { Mechanism = c.Mechanism.Type, Iterations = c.Iterations })],
    };
}
