namespace Moldau.Server.Http;

/// <summary>
/// One condition /health/ready waits for besides the broker's own (logs loaded, listeners bound):
/// cluster mode adds the database and the object store being reachable. A check must answer
/// quickly; it is given a token that is cancelled after <see cref="HttpEndpoint.ReadinessTimeout"/>.
/// </summary>
internal interface IReadinessCheck
{
    /// <summary>What is checked, for the body of a 503 answer.</summary>
    string Name { get; }

    /// <summary>Null when ready; otherwise why not.</summary>
    Task<string?> CheckAsync(CancellationToken cancellationToken);
}
