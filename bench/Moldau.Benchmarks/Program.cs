using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Moldau.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Moldau.Benchmarks.HotPathBenchmarks).Assembly).Run(args);
