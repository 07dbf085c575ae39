using System.Collections;
using System.Reflection;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Fuzz;

/// <summary>
/// Builds seed messages by reflection: every string gets a short value, every list one filled
/// element, every records field a real batch, so that the fuzzer starts from inputs that reach
/// deep into each decoder instead of failing at the first array.
/// </summary>
internal static class SeedMessages
{
    /// <summary>A small valid batch of two records, one with a header.</summary>
    public static byte[] Batch(CompressionType compression = CompressionType.None) =>
        RecordBatchBuilder.Build(
            [
                new RecordToWrite("k"u8.ToArray(), "value"u8.ToArray(), 1_700_000_000_000),
                new RecordToWrite(null, "v2"u8.ToArray(), 1_700_000_000_001, [("h", "x"u8.ToArray())]),
            ],
            compression: compression);

    /// <summary>The body of a filled <paramref name="type"/> at <paramref name="version"/>, or null when it doesn't encode.</summary>
    public static byte[]? Encode(RequestType type, short version)
    {
        var message = type.Create();
        Fill(message, 0);
        try
        {
            return message.ToBytes(version);
        }
        catch (Exception e) when (e is KafkaProtocolException or InvalidOperationException or ArgumentException or NullReferenceException)
        {
            return null;
        }
    }

    /// <summary>Fills <paramref name="message"/>'s settable properties with small valid values.</summary>
    public static void Fill(object message, int depth)
    {
        foreach (var p in message.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!p.CanWrite || p.Name == "UnknownTaggedFields")
            {
                continue;
            }

            var t = p.PropertyType;
            if (t == typeof(string))
            {
                p.SetValue(message, "t");
            }
            else if (t == typeof(byte[]))
            {
                p.SetValue(message, new byte[] { 1, 2, 3 });
            }
            else if (t == typeof(ReadOnlyMemory<byte>?) || t == typeof(ReadOnlyMemory<byte>))
            {
                p.SetValue(message, (ReadOnlyMemory<byte>?)Batch());
            }
            else if (t == typeof(int))
            {
                p.SetValue(message, 1);
            }
            else if (t == typeof(long))
            {
                p.SetValue(message, 1L);
            }
            else if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>) && depth < 4)
            {
                var element = t.GetGenericArguments()[0];
                var list = (IList)Activator.CreateInstance(t)!;
                if (element == typeof(string))
                {
                    list.Add("t");
                }
                else if (element == typeof(int))
                {
                    list.Add(1);
                }
                else if (element == typeof(long))
                {
                    list.Add(1L);
                }
                else if (typeof(IKafkaMessage).IsAssignableFrom(element) && element.GetConstructor(Type.EmptyTypes) is not null)
                {
                    var e = Activator.CreateInstance(element)!;
                    Fill(e, depth + 1);
                    list.Add(e);
                }

                p.SetValue(message, list);
            }
            else if (typeof(IKafkaMessage).IsAssignableFrom(t) && t.GetConstructor(Type.EmptyTypes) is not null && depth < 4)
            {
                var e = Activator.CreateInstance(t)!;
                Fill(e, depth + 1);
                p.SetValue(message, e);
            }
        }
    }
}
