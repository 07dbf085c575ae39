using Moldau.Codegen;

namespace Moldau.Protocol.Tests;

/// <summary>Regenerates the protocol code from ../shared/kafka-message-specs and compares.</summary>
public sealed class GeneratedCodeFreshnessTests
{
    [SkippableFact]
    public void CommittedCodeMatchesTheGenerator()
    {
        var root = RepoRoot.Find(AppContext.BaseDirectory);
        var specs = Path.GetFullPath(Path.Combine(root, "..", "shared", "kafka-message-specs"));
        Skip.IfNot(Directory.Exists(specs), $"specs not found at {specs}");
        var generatedDir = Path.Combine(root, "src", "Moldau.Protocol", "Generated");
        var expected = Generator.GenerateAll(specs);
        var actual = Directory.GetFiles(generatedDir, "*.g.cs", SearchOption.AllDirectories)
            .ToDictionary(p => Path.GetRelativePath(generatedDir, p).Replace('\\', '/'), File.ReadAllText);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (path, text) in expected)
        {
            Assert.True(text == actual[path], $"{path} differs from the generator's output: run `dotnet run --project tools/Moldau.Codegen`");
        }
    }
}
