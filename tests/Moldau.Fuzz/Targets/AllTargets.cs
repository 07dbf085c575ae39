namespace Moldau.Fuzz.Targets;

/// <summary>Every fuzz target, by name.</summary>
internal static class AllTargets
{
    /// <summary>The targets, in the order the script runs them.</summary>
    public static readonly IReadOnlyList<FuzzTarget> All =
    [
        new FrameTarget(),
        new HeaderTarget(),
        new RequestTarget(),
        new RecordsTarget(),
        new DecompressTarget(),
        new SegmentTarget(),
        new MetadataTarget(),
        new OffsetsRecordTarget(),
        new OffsetsReplayTarget(),
        new PropertiesTarget(),
    ];

    /// <summary>The target named <paramref name="name"/>, or null.</summary>
    public static FuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}
