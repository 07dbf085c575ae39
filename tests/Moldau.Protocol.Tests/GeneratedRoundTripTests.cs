using System.Collections;
using System.Reflection;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Protocol.Tests;

/// <summary>
/// Every generated message at every version: fill it with random values, write, read back,
/// write again, and require the same bytes (and the size pass to match the write pass).
/// </summary>
public sealed class GeneratedRoundTripTests
{
    public static TheoryData<string, short> AllMessageVersions()
    {
        var data = new TheoryData<string, short>();
        foreach (var type in MessageTypes())
        {
            var low = (short)type.GetField("LowestVersion")!.GetRawConstantValue()!;
            var high = (short)type.GetField("HighestVersion")!.GetRawConstantValue()!;
            for (var v = low; v <= high; v++)
            {
                data.Add(type.FullName!, v);
            }
        }

        return data;
    }

    internal static IEnumerable<Type> MessageTypes() =>
        typeof(ApiVersionsRequest).Assembly.GetTypes()
            .Where(t => !t.IsNested && typeof(IKafkaMessage).IsAssignableFrom(t) && t.GetField("LowestVersion") is not null)
            .OrderBy(t => t.FullName, StringComparer.Ordinal);

    [Fact]
    public void EveryMessageOfTheSpecsIsGenerated()
    {
        var names = MessageTypes().Select(t => t.Name).ToHashSet();
        Assert.Contains("ProduceRequest", names);
        Assert.Contains("FetchResponse", names);
        Assert.Contains("TopicRecord", names);
        Assert.Contains("OffsetCommitValue", names);
        Assert.True(names.Count > 200, $"only {names.Count} message types");
    }

    [Theory]
    [MemberData(nameof(AllMessageVersions))]
    public void RoundTripsWithRandomValues(string typeName, short version)
    {
        var type = typeof(ApiVersionsRequest).Assembly.GetType(typeName)!;
        for (var seed = 0; seed < 4; seed++)
        {
            var random = new Random((typeName.GetHashCode(StringComparison.Ordinal) * 31) + (version * 7) + seed);
            var original = (IKafkaMessage)RandomValues.Fill(type, random, depth: 0, flexible: seed % 2 == 1);
            var first = original.ToBytes(version);
            var reader = new KafkaReader(first);
            var copy = (IKafkaMessage)Activator.CreateInstance(type)!;
            copy.Read(ref reader, version);
            Assert.Equal(0, reader.Remaining);
            var second = copy.ToBytes(version);
            Assert.Equal(first, second);
        }
    }

    [Fact]
    public void TruncatedInputThrowsProtocolExceptionOnly()
    {
        var random = new Random(5);
        foreach (var type in MessageTypes())
        {
            var high = (short)type.GetField("HighestVersion")!.GetRawConstantValue()!;
            var bytes = ((IKafkaMessage)RandomValues.Fill(type, random, 0, flexible: false)).ToBytes(high);
            for (var cut = 0; cut < bytes.Length; cut += Math.Max(1, bytes.Length / 7))
            {
                var prefix = bytes.AsMemory(0, cut);
                var message = (IKafkaMessage)Activator.CreateInstance(type)!;
                try
                {
                    var reader = new KafkaReader(prefix);
                    message.Read(ref reader, high);
                }
                catch (KafkaProtocolException)
                {
                }
            }
        }
    }
}

/// <summary>Fills generated messages with random values by reflection.</summary>
internal static class RandomValues
{
    private static readonly NullabilityInfoContext Nullability = new();

    public static object Fill(Type type, Random random, int depth, bool flexible)
    {
        var instance = Activator.CreateInstance(type)!;
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            if (p.Name == "UnknownTaggedFields")
            {
                if (flexible && random.Next(3) == 0)
                {
                    p.SetValue(instance, new List<TaggedField> { new(1000 + random.Next(10), RandomBytes(random, 4)) });
                }

                continue;
            }

            var nullable = Nullability.Create(p).WriteState == NullabilityState.Nullable;
            if (nullable && random.Next(5) == 0)
            {
                p.SetValue(instance, null);
                continue;
            }

            p.SetValue(instance, Value(p.PropertyType, random, depth, flexible));
        }

        return instance;
    }

    private static object? Value(Type t, Random random, int depth, bool flexible)
    {
        var underlying = Nullable.GetUnderlyingType(t) ?? t;
        if (underlying == typeof(bool))
        {
            return random.Next(2) == 1;
        }

        if (underlying == typeof(sbyte))
        {
            return (sbyte)random.Next(-128, 128);
        }

        if (underlying == typeof(short))
        {
            return (short)random.Next(-32768, 32768);
        }

        if (underlying == typeof(ushort))
        {
            return (ushort)random.Next(0, 65536);
        }

        if (underlying == typeof(int))
        {
            return random.Next(int.MinValue, int.MaxValue);
        }

        if (underlying == typeof(long))
        {
            return random.NextInt64(long.MinValue, long.MaxValue);
        }

        if (underlying == typeof(double))
        {
            return random.NextDouble() * 1e6;
        }

        if (underlying == typeof(Uuid))
        {
            return new Uuid(random.NextInt64(), random.NextInt64());
        }

        if (underlying == typeof(string))
        {
            var chars = "abcXYZ-._019é中".ToCharArray();
            return new string(Enumerable.Range(0, random.Next(0, 12)).Select(_ => chars[random.Next(chars.Length)]).ToArray());
        }

        if (underlying == typeof(byte[]))
        {
            return RandomBytes(random, random.Next(0, 20));
        }

        if (underlying == typeof(ReadOnlyMemory<byte>))
        {
            return new ReadOnlyMemory<byte>(RandomBytes(random, random.Next(0, 40)));
        }

        if (underlying.IsGenericType && underlying.GetGenericTypeDefinition() == typeof(List<>))
        {
            var list = (IList)Activator.CreateInstance(underlying)!;
            var count = depth > 3 ? 0 : random.Next(0, 3);
            for (var i = 0; i < count; i++)
            {
                list.Add(Value(underlying.GetGenericArguments()[0], random, depth + 1, flexible));
            }

            return list;
        }

        if (typeof(IKafkaMessage).IsAssignableFrom(underlying))
        {
            return Fill(underlying, random, depth + 1, flexible);
        }

        throw new InvalidOperationException($"no random value for {t}");
    }

    private static byte[] RandomBytes(Random random, int n)
    {
        var b = new byte[n];
        random.NextBytes(b);
        return b;
    }
}
