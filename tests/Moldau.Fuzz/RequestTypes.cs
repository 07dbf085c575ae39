using System.Reflection;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Fuzz;

/// <summary>One generated request message type and the versions its spec has.</summary>
internal sealed record RequestType(short ApiKey, short LowestVersion, short HighestVersion, Func<IKafkaMessage> Create, string Name);

/// <summary>Every generated request decoder, found by reflection so a newly generated one is fuzzed too.</summary>
internal static class RequestTypes
{
    /// <summary>Every request type, by API key.</summary>
    public static readonly IReadOnlyList<RequestType> All = Find();

    /// <summary>The request type of <paramref name="apiKey"/>, or null.</summary>
    public static RequestType? Find(short apiKey) => All.FirstOrDefault(t => t.ApiKey == apiKey);

    private static List<RequestType> Find() =>
        typeof(ProduceRequest).Assembly.GetTypes()
            .Where(t => !t.IsNested && t.Namespace == typeof(ProduceRequest).Namespace && t.Name.EndsWith("Request", StringComparison.Ordinal)
                && typeof(IKafkaMessage).IsAssignableFrom(t) && t.GetConstructor(Type.EmptyTypes) is not null)
            .Select(t => new RequestType(
                Const(t, "SpecApiKey"),
                Const(t, "LowestVersion"),
                Const(t, "HighestVersion"),
                () => (IKafkaMessage)Activator.CreateInstance(t)!,
                t.Name))
            .OrderBy(t => t.ApiKey)
            .ToList();

    private static short Const(Type t, string name) =>
        (short)t.GetField(name, BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
}
