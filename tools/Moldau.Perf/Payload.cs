namespace Moldau.Perf;

/// <summary>Record values: random capital letters, so compression has something realistic to do.</summary>
internal static class Payload
{
    /// <summary>A value of <paramref name="size"/> bytes.</summary>
    public static byte[] Create(int size)
    {
        var bytes = new byte[size];
        var random = new Random(size);
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)('A' + random.Next(26));
        }

        return bytes;
    }
}
