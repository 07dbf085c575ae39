using Confluent.Kafka;
using Moldau.Perf;

if (args.Length > 0 && args[0] is "-h" or "--help" or "help" || args.Contains("--help"))
{
    Console.Out.WriteLine(PerfOptions.Usage);
    return 0;
}

PerfOptions options;
try
{
    options = PerfOptions.Parse(args);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"moldau-perf: {e.Message}");
    Console.Error.WriteLine();
    Console.Error.WriteLine(PerfOptions.Usage);
    return 2;
}

// Ctrl-C stops sending and reading; the summary of what was done is still printed.
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

try
{
    Librdkafka.Load();
    Console.Error.WriteLine($"moldau-perf: {options.Command} with librdkafka {Library.VersionString}");
    return options.Command switch
    {
        "produce" => await ProduceCommand.RunAsync(options, Console.Out, Console.Error, cancel.Token),
        "consume" => await ConsumeCommand.RunAsync(options, Console.Out, Console.Error, cancel.Token),
        _ => await EndToEndCommand.RunAsync(options, Console.Out, Console.Error, cancel.Token),
    };
}
catch (Exception e) when (e is KafkaException or ArgumentException or InvalidOperationException or DllNotFoundException)
{
    Console.Error.WriteLine($"moldau-perf: {e.Message}");
    return 1;
}
