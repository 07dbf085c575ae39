using Microsoft.Extensions.Logging;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Security.Sasl;

namespace Moldau.Broker.Security;

/// <summary>
/// Writes SCRAM credentials given on the command line (<c>--add-scram</c>, as <c>kafka-storage
/// format --add-scram</c>) into the metadata log before the broker serves. A credential the log
/// already holds for the same password and iterations is left as it is, so restarting with the
/// same option adds nothing.
/// </summary>
public static class ScramBootstrap
{
    /// <summary>Records <paramref name="specs"/> in <paramref name="broker"/>'s metadata log (the broker is started, not yet serving).</summary>
    public static void Apply(KafkaBroker broker, IReadOnlyList<ScramCredentialSpec> specs)
    {
        ArgumentNullException.ThrowIfNull(broker);
        var state = broker.State;
        state.Topics.ChangeScramCredentials(table =>
        {
            var records = new List<IKafkaMessage>();
            foreach (var spec in specs)
            {
                if (spec.IsStoredBy(table.Find(spec.Mechanism, spec.User)))
                {
                    continue;
                }

                records.Add(ScramCredentialTable.Record(spec.User, spec.ToCredential()));
                state.Log.LogInformation("--add-scram: {Mechanism} credential for user {User} ({Iterations} iterations) written to the metadata log", spec.Mechanism, spec.User, spec.Iterations);
            }

            return (records, 0);
        });
    }
}
