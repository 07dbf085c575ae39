using System.Buffers.Binary;
using Xunit;

namespace Moldau.IntegrationTests.Infrastructure;

/// <summary>
/// Reads a segment file of a running broker. The active segment is written with direct I/O in
/// whole 4 KiB blocks, so until it rolls or the broker stops its file may end in zeros after the
/// last batch; this returns the batches and checks that anything after them is only that padding.
/// </summary>
public static class SegmentFile
{
    /// <summary>The batches in the file at <paramref name="path"/>, without the trailing block padding.</summary>
    public static async Task<byte[]> ReadBatchesAsync(string path)
    {
        var bytes = await File.ReadAllBytesAsync(path);
        var end = BatchesEnd(bytes);
        Assert.True(bytes.Length - end < 4096, $"{bytes.Length - end} bytes after the last batch of {path}");
        Assert.True(bytes.AsSpan(end).IndexOfAnyExcept((byte)0) < 0, $"non-zero bytes after the last batch of {path}");
        return bytes[..end];
    }

    /// <summary>Bytes of whole batches in the segment file at <paramref name="path"/>; 0 once retention removed it.</summary>
    public static long DataLength(string path)
    {
        try
        {
            return BatchesEnd(File.ReadAllBytes(path));
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }

    private static int BatchesEnd(byte[] bytes)
    {
        var position = 0;
        while (position + 12 <= bytes.Length)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(position + 8));
            if (length <= 0 || position + 12 + length > bytes.Length)
            {
                break;
            }

            position += 12 + length;
        }

        return position;
    }
}
