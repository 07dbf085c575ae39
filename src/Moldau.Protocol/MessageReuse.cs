namespace Moldau.Protocol;

/// <summary>
/// What the generated messages use to be read into, or reset and refilled, again and again
/// without allocating: the elements a list held are kept aside and handed out again, in their
/// old order (so their strings can be kept too, see <see cref="KafkaReader.ReadString(bool, string?)"/>),
/// and a list set to null is kept to be the next non-null one.
/// </summary>
internal static class MessageReuse
{
    /// <summary>Empties <paramref name="list"/>, keeping its elements in <paramref name="spare"/>.</summary>
    public static void Recycle<T>(List<T> list, ref List<T>? spare)
        where T : class
    {
        var count = list.Count;
        if (count == 0)
        {
            return;
        }

        spare ??= new List<T>(count);
        // Last first: Take pops from the end, so element 0 comes back first.
        for (var i = count - 1; i >= 0; i--)
        {
            spare.Add(list[i]);
        }

        list.Clear();
    }

    /// <summary>An element kept by <see cref="Recycle"/> (its fields as they were), or a new one.</summary>
    public static T Take<T>(ref List<T>? spare)
        where T : class, new()
    {
        if (spare is { Count: > 0 } s)
        {
            var last = s.Count - 1;
            var e = s[last];
            s.RemoveAt(last);
            return e;
        }

        return new T();
    }

    /// <summary>The empty list kept in <paramref name="kept"/> when the field was set to null, or a new one.</summary>
    public static List<T> List<T>(ref List<T>? kept)
    {
        var list = kept ?? [];
        kept = null;
        return list;
    }
}
