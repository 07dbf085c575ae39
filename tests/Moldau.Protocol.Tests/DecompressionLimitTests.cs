using Moldau.Protocol.Records;

namespace Moldau.Protocol.Tests;

/// <summary>Inputs the fuzzer found (tests/Moldau.Fuzz/corpus/decompress/), as plain regression tests.</summary>
public sealed class DecompressionLimitTests
{
    [Fact]
    public void A_snappy_block_declaring_more_than_it_can_hold_is_refused_before_allocating()
    {
        // A bare snappy block of 7 bytes whose length varint says 0x7FFFFFDE (2 GiB): the decoder
        // allocated that before reading the data.
        byte[] block = [0xDE, 0xFF, 0xFF, 0x7F, 0x68, 0x02, 0x78];
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<KafkaProtocolException>(() => RecordCompression.Decompress(CompressionType.Snappy, block));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated the declared length");
    }

    [Fact]
    public void A_snappy_length_past_int_max_is_refused()
    {
        // The varint reads as 0xCFFFFFDE: the decoder threw OverflowException.
        byte[] block = [0xDE, 0xFF, 0xFF, 0xFF, 0x0C];
        Assert.Throws<KafkaProtocolException>(() => RecordCompression.Decompress(CompressionType.Snappy, block));
    }

    [Fact]
    public void A_xerial_snappy_block_declaring_more_than_it_can_hold_is_refused()
    {
        byte[] framed = [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5, 0xDE, 0xFF, 0xFF, 0x7F, 0x00];
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<KafkaProtocolException>(() => RecordCompression.Decompress(CompressionType.Snappy, framed));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated the declared length");
    }

    [Fact]
    public void Snappy_at_its_best_ratio_still_decompresses()
    {
        // Zeros compress as far as snappy goes (64 bytes per 3-byte copy): the bound must pass them.
        var zeros = new byte[1 << 20];
        foreach (var compressed in new[] { RecordCompression.Compress(CompressionType.Snappy, zeros), Snappier.Snappy.CompressToArray(zeros) })
        {
            Assert.Equal(zeros.Length, RecordCompression.Decompress(CompressionType.Snappy, compressed).Length);
        }
    }

    [Fact]
    public void An_lz4_frame_asking_for_a_predefined_dictionary_is_a_protocol_error()
    {
        // The LZ4 frame flag "dictionary id present": the reader threw NotImplementedException.
        byte[] frame = [0x04, 0x22, 0x4D, 0x18, 0x7F, 0x40, 0x82, 0x05, 0x00, 0x00, 0x80, 0x18, 0x00, 0x00, 0x00, 0x02, 0x6B, 0x0A, 0x76, 0x9E, 0x6C, 0x8A, 0x65, 0x00, 0x02, 0x6B, 0x0A, 0x76, 0x9E, 0x6C, 0x75, 0x65, 0x00, 0x18, 0x00, 0x02, 0x1C, 0x01, 0x04, 0x76, 0x32];
        Assert.Throws<KafkaProtocolException>(() => RecordCompression.Decompress(CompressionType.Lz4, frame));
    }
}
