using Moldau.Codegen;

// Usage: Moldau.Codegen [specs-dir] [output-dir]
// Defaults: ../shared/kafka-message-specs beside the repository, src/Moldau.Protocol/Generated.
var root = RepoRoot.Find();
var specs = args.Length > 0 ? args[0] : Path.GetFullPath(Path.Combine(root, "..", "shared", "kafka-message-specs"));
var output = args.Length > 1 ? args[1] : Path.Combine(root, "src", "Moldau.Protocol", "Generated");
if (!Directory.Exists(specs))
{
    Console.Error.WriteLine($"specs not found at {specs}");
    return 2;
}

var count = Generator.WriteAll(specs, output);
Console.WriteLine($"generated {count} files into {output}");
return 0;
