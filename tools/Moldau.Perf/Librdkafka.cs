using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace Moldau.Perf;

/// <summary>
/// Loads the librdkafka that ships with the Confluent.Kafka package in its self-contained build
/// (centos8-librdkafka.so, statically linked against its dependencies) when it is present.
/// </summary>
internal static class Librdkafka
{
    /// <summary>Loads the library; call once before building any client.</summary>
    public static void Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "centos8-librdkafka.so");
        if (!OperatingSystem.IsLinux() || !File.Exists(path))
        {
            // Elsewhere the package's default lookup is right.
            return;
        }

        // The plain linux-x64 librdkafka.so links libsasl2.so.3, which Debian does not ship, and
        // Confluent.Kafka would then fall back to whatever older librdkafka the system has. Its
        // P/Invokes name "librdkafka" (pointed at the self-contained build here) and "libdl"
        // (which Debian has only as libdl.so.2).
        NativeLibrary.SetDllImportResolver(typeof(Library).Assembly, (name, _, _) => name switch
        {
            "libdl" => NativeLibrary.TryLoad("libdl.so.2", out var dl) ? dl : IntPtr.Zero,
            "librdkafka" => NativeLibrary.Load(path),
            _ => IntPtr.Zero,
        });
        Library.Load(path);
    }
}
