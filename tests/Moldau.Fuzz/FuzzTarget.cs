using Moldau.Protocol;

namespace Moldau.Fuzz;

/// <summary>
/// One place that reads untrusted bytes, driven by arbitrary input. <see cref="Run"/> throws what
/// the code under test throws; <see cref="IsExpected"/> says which of those exceptions are the
/// code's documented way of refusing garbage. Anything else is a finding.
/// </summary>
internal abstract class FuzzTarget
{
    /// <summary>The name used on the command line and as the corpus directory.</summary>
    public abstract string Name { get; }

    /// <summary>What the input is and what the target drives.</summary>
    public abstract string Description { get; }

    /// <summary>Feeds <paramref name="input"/> to the code under test.</summary>
    public abstract void Run(ReadOnlyMemory<byte> input);

    /// <summary>
    /// The exceptions that are a refusal, not a bug. By default only
    /// <see cref="KafkaProtocolException"/>: every reader of wire bytes documents that it throws
    /// that and nothing else on malformed input.
    /// </summary>
    public virtual bool IsExpected(Exception e) => e is KafkaProtocolException;

    /// <summary>Well-formed (or nearly) inputs to start from.</summary>
    public abstract IEnumerable<(string Name, byte[] Bytes)> Seeds();
}

/// <summary>An invariant the harness checks itself found broken (an allocation too large, a round trip that differs).</summary>
internal sealed class FuzzFinding(string message) : Exception(message);
