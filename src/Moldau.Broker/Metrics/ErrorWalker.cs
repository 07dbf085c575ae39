using System.Reflection;
using Moldau.Protocol;

namespace Moldau.Broker.Metrics;

/// <summary>
/// Finds every error code in a response, as Kafka's <c>AbstractResponse.errorCounts</c> does for
/// its ErrorsPerSec meter: the top-level <c>ErrorCode</c> and those of the items of its lists,
/// at any depth (Produce's partitions, a group's members). A pooled reply that wraps the
/// response in a <c>Response</c> property (Produce, Fetch) is looked into. Built once per type
/// from delegates over the generated properties; a walk allocates nothing.
/// </summary>
/// <typeparam name="T">A response type, or a message type inside one.</typeparam>
internal static class ErrorWalker<T>
{
    /// <summary>Calls the tally with each non-zero error code of a message; null when the type has none anywhere.</summary>
    public static readonly Action<T, ErrorTally>? Walk = Build();

    private static Action<T, ErrorTally>? Build()
    {
        Action<T, ErrorTally>? walk = null;
        var type = typeof(T);
        if (type.GetProperty("ErrorCode") is null && type.GetProperty("Response", BindingFlags.Public | BindingFlags.Instance) is { } wrapped
            && typeof(IKafkaMessage).IsAssignableFrom(wrapped.PropertyType))
        {
            return (Action<T, ErrorTally>?)typeof(ErrorWalker<T>).GetMethod(nameof(Nested), BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(wrapped.PropertyType).Invoke(null, [wrapped]);
        }

        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.Name == "ErrorCode" && property.PropertyType == typeof(short) && property.GetMethod is { } getter)
            {
                var read = getter.CreateDelegate<Func<T, short>>();
                walk += (message, tally) => tally.Add(read(message));
            }
            else if (property.PropertyType.IsGenericType && property.PropertyType.GetGenericTypeDefinition() == typeof(List<>)
                && property.PropertyType.GetGenericArguments()[0] is var item && item != type && typeof(IKafkaMessage).IsAssignableFrom(item) && item != typeof(TaggedField))
            {
                var list = (Action<T, ErrorTally>?)typeof(ErrorWalker<T>).GetMethod(nameof(Items), BindingFlags.NonPublic | BindingFlags.Static)!
                    .MakeGenericMethod(item).Invoke(null, [property]);
                walk += list;
            }
        }

        return walk;
    }

    private static Action<T, ErrorTally>? Nested<TInner>(PropertyInfo property)
    {
        if (ErrorWalker<TInner>.Walk is not { } inner)
        {
            return null;
        }

        var read = property.GetMethod!.CreateDelegate<Func<T, TInner>>();
        return (message, tally) => inner(read(message), tally);
    }

    private static Action<T, ErrorTally>? Items<TItem>(PropertyInfo property)
    {
        if (ErrorWalker<TItem>.Walk is not { } inner)
        {
            return null;
        }

        var read = property.GetMethod!.CreateDelegate<Func<T, List<TItem>?>>();
        return (message, tally) =>
        {
            if (read(message) is { } items)
            {
                for (var i = 0; i < items.Count; i++)
                {
                    inner(items[i], tally);
                }
            }
        };
    }
}

/// <summary>Where <see cref="ErrorWalker{T}"/> reports the error codes of one response: the counts of its API.</summary>
internal readonly struct ErrorTally(long[] counts, int row)
{
    /// <summary>Counts <paramref name="code"/> unless it is NONE.</summary>
    public void Add(short code)
    {
        if (code != 0)
        {
            var column = code + 1;
            Interlocked.Increment(ref counts[row + ((uint)column < RequestMetrics.ErrorColumns ? column : RequestMetrics.ErrorColumns - 1)]);
        }
    }
}
