using Moldau.Fuzz;
using Moldau.Fuzz.Targets;

namespace Moldau.Fuzz.Tests;

/// <summary>
/// Replays the committed fuzz corpus (tests/Moldau.Fuzz/corpus/&lt;target&gt;/: every crash the
/// fuzzer found, kept as a regression case, and minimised inputs that reach deep paths) and each
/// target's seeds through the same targets the fuzzer runs: any exception other than the
/// target's expected ones fails. <c>scripts/fuzz.sh</c> copies new findings to pending/ (not
/// replayed) for triage; each moves here with its fix.
/// </summary>
public sealed class CorpusReplayTests
{
    public static TheoryData<string> Targets() => [.. AllTargets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Targets))]
    public void Corpus_replays_without_a_finding(string name)
    {
        var target = AllTargets.Find(name)!;
        var dir = Path.Combine(RepoRoot(), "tests", "Moldau.Fuzz", "corpus", name);
        var files = Directory.Exists(dir) ? Directory.GetFiles(dir).Order(StringComparer.Ordinal).ToArray() : [];
        var failures = new List<string>();
        foreach (var file in files)
        {
            try
            {
                FuzzRunner.Execute(target, File.ReadAllBytes(file));
            }
            catch (Exception e)
            {
                failures.Add($"{Path.GetFileName(file)}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {files.Length} corpus inputs of {name} are findings:\n{string.Join("\n", failures)}");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Seeds_are_accepted(string name)
    {
        // Seeds are well-formed: a target that refuses its own seeds starts the fuzzer nowhere.
        var target = AllTargets.Find(name)!;
        var seeds = target.Seeds().ToList();
        Assert.NotEmpty(seeds);
        foreach (var (seed, bytes) in seeds)
        {
            var outcome = FuzzRunner.Execute(target, bytes, out var rejection);
            Assert.True(outcome == Outcome.Accepted, $"{name} seed {seed} rejected: {rejection}");
        }
    }

    [Fact]
    public void Every_target_has_a_committed_corpus()
    {
        var corpus = Path.Combine(RepoRoot(), "tests", "Moldau.Fuzz", "corpus");
        var missing = AllTargets.All.Where(t => !Directory.Exists(Path.Combine(corpus, t.Name)) || Directory.GetFiles(Path.Combine(corpus, t.Name)).Length == 0).Select(t => t.Name).ToList();
        Assert.True(missing.Count == 0, $"no corpus for: {string.Join(", ", missing)}");
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Moldau.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Moldau.slnx above {AppContext.BaseDirectory}");
    }
}
