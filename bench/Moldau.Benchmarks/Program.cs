using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Moldau.Benchmarks -- --filter '*'
// dotnet run -c Release --project bench/Moldau.Benchmarks -- heap <pid> <partitions>   (HeapCensus)
if (args.Length > 0 && args[0] == "heap")
{
    return Moldau.Benchmarks.HeapCensus.Run(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(Moldau.Benchmarks.HotPathBenchmarks).Assembly).Run(args);
return 0;
