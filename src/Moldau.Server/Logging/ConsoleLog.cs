using Microsoft.Extensions.Logging;

namespace Moldau.Server.Logging;

/// <summary>
/// A small logger writing "time level category: message" lines to stderr. Moldau avoids the
/// logging framework's console provider and hosting to keep start-up fast.
/// </summary>
internal sealed class ConsoleLoggerFactory(LogLevel minimum) : ILoggerFactory
{
    private readonly Lock _write = new();

    public ILogger CreateLogger(string categoryName) => new ConsoleLogger(this, categoryName);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private void Write(LogLevel level, string category, string message, Exception? exception)
    {
        var tag = level switch
        {
            LogLevel.Trace => "TRACE",
            LogLevel.Debug => "DEBUG",
            LogLevel.Information => "INFO",
            LogLevel.Warning => "WARN",
            LogLevel.Error => "ERROR",
            _ => "FATAL",
        };
        var line = $"{DateTime.UtcNow:yyyy-MM-dd HH:mm:ss.fff} {tag} {category}: {message}";
        if (exception is not null)
        {
            line += Environment.NewLine + exception;
        }

        lock (_write)
        {
            Console.Error.WriteLine(line);
        }
    }

    private sealed class ConsoleLogger(ConsoleLoggerFactory factory, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= factory._minimumLevel && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                factory.Write(logLevel, category, formatter(state, exception), exception);
            }
        }
    }

    private readonly LogLevel _minimumLevel = minimum;
}
