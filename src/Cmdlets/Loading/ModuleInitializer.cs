using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;

namespace SqliteReplica.Loading;

/// <summary>
/// Runs when PowerShell imports and removes the module. It teaches the default load
/// context where the engine is: when the cmdlets' first use of an engine type makes
/// the default context look for <c>SqliteReplica.Engine</c> and fail (it is not beside
/// the root DLL), the engine is loaded into <see cref="EngineLoadContext"/> instead,
/// and from there all of its own dependencies resolve privately.
/// </summary>
/// <remarks>
/// Only the engine assembly is handed over. Any other failed lookup in the default
/// context is left alone, so this module never answers for someone else's assembly.
/// This type must not mention engine types itself: it runs before the handler is in place.
/// </remarks>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static readonly object s_gate = new();
    private static bool s_hooked;

    /// <summary>Called by PowerShell when the module is imported.</summary>
    public void OnImport()
    {
        lock (s_gate)
        {
            if (!s_hooked)
            {
                AssemblyLoadContext.Default.Resolving += ResolveEngine;
                s_hooked = true;
            }
        }
    }

    /// <summary>Called by PowerShell when the module is removed.</summary>
    public void OnRemove(PSModuleInfo psModuleInfo)
    {
        lock (s_gate)
        {
            if (s_hooked)
            {
                AssemblyLoadContext.Default.Resolving -= ResolveEngine;
                s_hooked = false;
            }
        }
    }

    private static Assembly? ResolveEngine(AssemblyLoadContext context, AssemblyName requested)
    {
        return string.Equals(requested.Name, EngineLoadContext.EngineAssemblyName, StringComparison.OrdinalIgnoreCase)
            ? EngineLoadContext.Instance.LoadEngine(requested)
            : null;
    }
}
