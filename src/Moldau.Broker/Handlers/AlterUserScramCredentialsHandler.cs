using Microsoft.Extensions.Logging;
using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Metadata;
using Moldau.Security.Sasl;

namespace Moldau.Broker.Handlers;

/// <summary>
/// AlterUserScramCredentials v0 (KIP-554): deletions and upsertions of SCRAM credentials, each
/// user's changes all or nothing, written to the metadata log as UserScramCredentialRecord and
/// RemoveUserScramCredentialRecord (salted: the client sends salt and salted password, the broker
/// keeps StoredKey and ServerKey). As Kafka: ALTER on the cluster is required (else every user is
/// CLUSTER_AUTHORIZATION_FAILED); per user, an empty name or an iteration count outside
/// 4096..16384 is UNACCEPTABLE_CREDENTIAL, an unknown mechanism UNSUPPORTED_SASL_MECHANISM, the same
/// user and mechanism twice DUPLICATE_RESOURCE, deleting a credential that does not exist
/// RESOURCE_NOT_FOUND.
/// </summary>
internal sealed class AlterUserScramCredentialsHandler(BrokerState state) : IApiHandler<AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse>
{
    /// <inheritdoc/>
    public ValueTask<AlterUserScramCredentialsResponse> HandleAsync(RequestContext context, AlterUserScramCredentialsRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public AlterUserScramCredentialsResponse ErrorResponse(RequestContext context, AlterUserScramCredentialsRequest request, ErrorCode error) => new()
    {
        Results = [.. Users(request).Select(u => new AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult { User = u, ErrorCode = (short)error, ErrorMessage = null })],
    };

    private static IEnumerable<string> Users(AlterUserScramCredentialsRequest request) =>
        request.Deletions.Select(d => d.Name).Concat(request.Upsertions.Select(u => u.Name)).Distinct(StringComparer.Ordinal);

    private AlterUserScramCredentialsResponse Handle(RequestContext context, AlterUserScramCredentialsRequest request)
    {
        if (!state.Authorizer.Authorize(context, AclOperation.Alter, ResourceType.Cluster, AuthorizedOperations.ClusterName))
        {
            return ErrorResponse(context, request, ErrorCode.ClusterAuthorizationFailed);
        }

        return state.Topics.ChangeScramCredentials(table =>
        {
            var records = new List<IKafkaMessage>();
            var results = new List<AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult>();
            foreach (var user in Users(request))
            {
                var (error, message, changes) = Validate(table, user, request);
                results.Add(new() { User = user, ErrorCode = (short)error, ErrorMessage = message });
                if (error == ErrorCode.None)
                {
                    records.AddRange(changes);
                }
            }

            if (records.Count > 0)
            {
                state.Log.LogInformation("SCRAM credentials changed by {Principal}: {Changes}", context.Session.Principal, string.Join(", ", records.Select(Describe)));
            }

            return (records, new AlterUserScramCredentialsResponse { Results = results });
        });
    }

    private static (ErrorCode Error, string? Message, List<IKafkaMessage> Records) Validate(ScramCredentialTable table, string user, AlterUserScramCredentialsRequest request)
    {
        var records = new List<IKafkaMessage>();
        if (user.Length == 0)
        {
            return (ErrorCode.UnacceptableCredential, "Username must not be empty", records);
        }

        var deletions = request.Deletions.Where(d => d.Name == user).ToList();
        var upsertions = request.Upsertions.Where(u => u.Name == user).ToList();
        var mechanisms = deletions.Select(d => d.Mechanism).Concat(upsertions.Select(u => u.Mechanism)).ToList();
        if (mechanisms.Any(m => ScramMechanism.FromType(m) is null))
        {
            return (ErrorCode.UnsupportedSaslMechanism, "Unknown SCRAM mechanism", records);
        }

        if (mechanisms.Count != mechanisms.Distinct().Count())
        {
            return (ErrorCode.DuplicateResource, "A user credential cannot be altered twice in the same request", records);
        }

        foreach (var deletion in deletions)
        {
            if (table.Find(ScramMechanism.FromType(deletion.Mechanism)!, user) is null)
            {
                return (ErrorCode.ResourceNotFound, "Attempt to delete a user credential that does not exist", records);
            }

            records.Add(new RemoveUserScramCredentialRecord { Name = user, Mechanism = deletion.Mechanism });
        }

        foreach (var upsertion in upsertions)
        {
            var mechanism = ScramMechanism.FromType(upsertion.Mechanism)!;
            if (upsertion.Iterations < ScramMechanism.MinIterations)
            {
                return (ErrorCode.UnacceptableCredential, "Too few iterations", records);
            }

            if (upsertion.Iterations > ScramMechanism.MaxIterations)
            {
                return (ErrorCode.UnacceptableCredential, "Too many iterations", records);
            }

            if (upsertion.Salt.Length == 0 || upsertion.SaltedPassword.Length != mechanism.HashBytes)
            {
                return (ErrorCode.UnacceptableCredential, "Salt and salted password must not be empty, and the salted password as long as the mechanism's hash", records);
            }

            var credential = mechanism.FromSaltedPassword(upsertion.SaltedPassword, upsertion.Salt, upsertion.Iterations);
            records.Add(ScramCredentialTable.Record(user, credential));
        }

        return (ErrorCode.None, null, records);
    }

    private static string Describe(IKafkaMessage record) => record switch
    {
        UserScramCredentialRecord r => $"set {ScramMechanism.FromType(r.Mechanism)} for {r.Name} ({r.Iterations} iterations)",
        RemoveUserScramCredentialRecord r => $"removed {ScramMechanism.FromType(r.Mechanism)} of {r.Name}",
        _ => record.GetType().Name,
    };
}
