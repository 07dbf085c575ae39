using Moldau.Fuzz;
using Moldau.Fuzz.Targets;

// Moldau.Fuzz: coverage-guided fuzzing of every reader of untrusted bytes (see docs/security.md,
// "Fuzzing", and scripts/fuzz.sh).
//
//   list                               the targets, one per line: name, then what it drives
//   fuzz <target>                      run under afl-fuzz (SharpFuzz's in-process loop)
//   replay <target> <file|dir>...      run each input once; exit 1 if any is a finding
//   seeds <dir> [target...]            write each target's seeds to <dir>/<target>/
var usage = "usage: Moldau.Fuzz list | fuzz <target> | replay <target> <file|dir>... | seeds <dir> [target...]";
if (args.Length == 0)
{
    Console.Error.WriteLine(usage);
    return 2;
}

switch (args[0])
{
    case "list":
        foreach (var t in AllTargets.All)
        {
            Console.WriteLine($"{t.Name}\t{t.Description}");
        }

        return 0;

    case "fuzz" when args.Length == 2 && AllTargets.Find(args[1]) is { } target:
        {
            var buffer = new MemoryStream();
            SharpFuzz.Fuzzer.Run(stream =>
            {
                buffer.SetLength(0);
                stream.CopyTo(buffer);
                FuzzRunner.Execute(target, buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
            });
            return 0;
        }

    case "replay" when args.Length >= 3 && AllTargets.Find(args[1]) is { } target:
        {
            var findings = 0;
            var files = 0;
            foreach (var file in args[2..].SelectMany(a => Directory.Exists(a) ? Directory.GetFiles(a).Order(StringComparer.Ordinal).ToArray() : new[] { a }))
            {
                files++;
                try
                {
                    var outcome = FuzzRunner.Execute(target, File.ReadAllBytes(file), out var rejection);
                    Console.WriteLine($"{outcome.ToString().ToLowerInvariant()}\t{file}{(rejection is null ? "" : $"\t{rejection.GetType().Name}: {rejection.Message}")}");
                }
                catch (Exception e)
                {
                    findings++;
                    Console.WriteLine($"FINDING\t{file}\n{e}");
                }
            }

            Console.WriteLine($"{target.Name}: {files} inputs, {findings} findings");
            return findings == 0 ? 0 : 1;
        }

    case "seeds" when args.Length >= 2:
        {
            var names = args.Length > 2 ? args[2..] : AllTargets.All.Select(t => t.Name).ToArray();
            foreach (var name in names)
            {
                var target = AllTargets.Find(name);
                if (target is null)
                {
                    Console.Error.WriteLine($"unknown target {name}");
                    return 2;
                }

                var dir = Path.Combine(args[1], name);
                Directory.CreateDirectory(dir);
                foreach (var (seed, bytes) in target.Seeds())
                {
                    File.WriteAllBytes(Path.Combine(dir, $"seed-{seed}"), bytes);
                }
            }

            return 0;
        }

    default:
        Console.Error.WriteLine(usage);
        return 2;
}
