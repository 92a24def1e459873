using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.Loader;

namespace SqliteReplica.Loading;

/// <summary>
/// The module's private <see cref="AssemblyLoadContext"/>. It holds the engine
/// (<c>SqliteReplica.Engine.dll</c>) and every package the engine depends on, all
/// published into the <c>dependencies</c> folder beside the module's root DLL.
/// </summary>
/// <remarks>
/// Resolution follows the engine's own <c>.deps.json</c> through an
/// <see cref="AssemblyDependencyResolver"/>, so managed packages (Microsoft.Data.Sqlite,
/// YamlDotNet, ...) and native assets under <c>runtimes/&lt;rid&gt;/native/</c>
/// (<c>libe_sqlite3.so</c>) are found without any runtime identifier at publish time.
/// Assemblies the engine does not ship (the framework, System.Management.Automation)
/// fall back to the default context. Other modules loaded in the same session may
/// therefore use different versions of the same packages without conflict.
/// See "Resolving PowerShell module assembly dependency conflicts" in the PowerShell docs.
/// </remarks>
internal sealed class EngineLoadContext : AssemblyLoadContext
{
    /// <summary>The simple name of the engine assembly, the only one handed over from the default context.</summary>
    internal const string EngineAssemblyName = "SqliteReplica.Engine";

    /// <summary>The folder, beside the root DLL, that holds the engine and its packages.</summary>
    internal const string DependencyFolderName = "dependencies";

    private const string ContextName = "SqliteReplica";

    private static readonly Lazy<EngineLoadContext> s_instance =
        new(() => new EngineLoadContext(GetDefaultEnginePath()), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly AssemblyDependencyResolver _resolver;
    private readonly ConcurrentDictionary<string, IntPtr> _nativeHandles = new(StringComparer.Ordinal);

    private EngineLoadContext(string enginePath)
        : base(ContextName, isCollectible: false)
    {
        EnginePath = enginePath;
        _resolver = new AssemblyDependencyResolver(enginePath);
    }

    /// <summary>The one instance for the process (a non-collectible context cannot be unloaded anyway).</summary>
    internal static EngineLoadContext Instance => s_instance.Value;

    /// <summary>Full path of <c>dependencies/SqliteReplica.Engine.dll</c>.</summary>
    internal string EnginePath { get; }

    /// <summary>Loads (or returns the already loaded) engine assembly in this context.</summary>
    internal Assembly LoadEngine(AssemblyName requested) => LoadFromAssemblyName(requested);

    /// <inheritdoc />
    protected override Assembly? Load(AssemblyName assemblyName)
    {
        if (assemblyName.Name is null)
        {
            return null;
        }

        if (_resolver.ResolveAssemblyToPath(assemblyName) is { } path)
        {
            return LoadFromAssemblyPath(path);
        }

        // The engine is listed in its own .deps.json; this only guards against a missing one.
        if (string.Equals(assemblyName.Name, EngineAssemblyName, StringComparison.OrdinalIgnoreCase) && File.Exists(EnginePath))
        {
            return LoadFromAssemblyPath(EnginePath);
        }

        // Not one of ours (framework, PowerShell): let the default context provide it.
        return null;
    }

    /// <inheritdoc />
    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        // The runtime asks again for every P/Invoke site; answer from a cache after the first time.
        return _nativeHandles.GetOrAdd(unmanagedDllName, name =>
            _resolver.ResolveUnmanagedDllToPath(name) is { } path
                ? LoadUnmanagedDllFromPath(path)
                : IntPtr.Zero);
    }

    private static string GetDefaultEnginePath()
    {
        string? moduleDirectory = Path.GetDirectoryName(typeof(EngineLoadContext).Assembly.Location);
        if (string.IsNullOrEmpty(moduleDirectory))
        {
            throw new InvalidOperationException(
                "The SqliteReplica module DLL has no file location, so its dependencies folder cannot be found.");
        }

        return Path.Combine(moduleDirectory, DependencyFolderName, EngineAssemblyName + ".dll");
    }
}
