using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace Moldau.Cluster.Tests.Infrastructure;

/// <summary>
/// Loads NuGet's self-contained librdkafka 2.16.0 (centos8-librdkafka.so): the plain
/// linux-x64 build needs libsasl2.so.3, which Debian lacks, and Confluent.Kafka would then quietly
/// fall back to Debian's 2.0.2 if that is installed.
/// </summary>
public static class Librdkafka
{
    private static readonly Lazy<bool> Loaded = new(Load);

    /// <summary>Loads the library once; call before creating any client.</summary>
    public static void EnsureLoaded() => _ = Loaded.Value;

    /// <summary>
    /// Loaded as the test assembly loads, so a test that forgets <see cref="EnsureLoaded"/> cannot
    /// bind Confluent.Kafka to Debian's 2.0.2: two librdkafka builds in one process fail on missing
    /// entry points and abort the test host in librdkafka's own thread assertions.
    /// </summary>
#pragma warning disable CA2255 // a test assembly, not a library: loading the native client first is the point
    [ModuleInitializer]
    internal static void LoadWithTheAssembly() => EnsureLoaded();
#pragma warning restore CA2255

    private static bool Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "centos8-librdkafka.so");

        // Confluent.Kafka dlopens through "libdl", which Debian ships only as libdl.so.2, and binds
        // its P/Invokes to "librdkafka", which must be the self-contained build.
        NativeLibrary.SetDllImportResolver(typeof(Library).Assembly, (name, _, _) => name switch
        {
            "libdl" => NativeLibrary.Load("libdl.so.2"),
            "librdkafka" => NativeLibrary.Load(path),
            _ => IntPtr.Zero,
        });
        Library.Load(path);
        return true;
    }
}
