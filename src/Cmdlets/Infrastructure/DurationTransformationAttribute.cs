using System.Management.Automation;
using SqliteReplica.Engine.Config;

namespace SqliteReplica.Infrastructure;

/// <summary>
/// Lets duration parameters take what Litestream users write (<c>1s</c>, <c>500ms</c>, <c>12h</c>),
/// a plain number of seconds, or any [TimeSpan].
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class DurationTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        var value = inputData is PSObject pso ? pso.BaseObject : inputData;
        switch (value)
        {
            case TimeSpan ts:
                return ts;
            case decimal:
                // 7d is PowerShell's decimal literal 7, not seven days.
                throw new ArgumentTransformationMetadataException(
                    $"'{value}' arrived as a decimal number (PowerShell reads 7d as the decimal 7, not 7 days). Write a Go duration in quotes, e.g. '168h', or a [TimeSpan] such as (New-TimeSpan -Days 7).");
            case short or ushort or byte or sbyte or int or uint or long or ulong or double or float:
                // 3s is PowerShell's [short] literal 3: seconds either way.
                return TimeSpan.FromSeconds(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture));
            case string s when GoDuration.TryParse(s, out var d):
                return d;
            case string s when TimeSpan.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var t):
                return t;
            default:
                throw new ArgumentTransformationMetadataException(
                    $"'{value}' is not a duration. Use Go-style durations as in litestream.yml (500ms, 10s, 1m30s, 24h), a number of seconds, or a [TimeSpan].");
        }
    }
}
