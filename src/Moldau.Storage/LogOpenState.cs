namespace Moldau.Storage;

/// <summary>What the log dir says about a log before it is opened (see <see cref="LocalLogManager"/>).</summary>
/// <param name="Directory">The partition's directory (existing, or the one to create).</param>
/// <param name="CleanShutdown">The log dir was closed cleanly (<c>.kafka_cleanshutdown</c>): its files are trusted.</param>
/// <param name="RecoveryPoint">The offset below which the log is known to be on disk.</param>
/// <param name="CleanedUpTo">How far compaction had cleaned the log.</param>
public readonly record struct LogOpenState(string Directory, bool CleanShutdown, long RecoveryPoint, long CleanedUpTo);
