using System.Management.Automation;
using SqliteReplica.Engine.Errors;

namespace SqliteReplica.Infrastructure;

/// <summary>
/// The one table from engine error codes to PowerShell error ids and categories. Ids are part of
/// the module's contract: scripts and tests match on them, so they never change.
/// </summary>
internal static class ErrorMap
{
    private static readonly Dictionary<ReplicaErrorCode, (string Id, ErrorCategory Category)> Table = new()
    {
        [ReplicaErrorCode.InvalidArgument] = ("InvalidArgument", ErrorCategory.InvalidArgument),
        [ReplicaErrorCode.InvalidReplicaUrl] = ("InvalidReplicaUrl", ErrorCategory.InvalidArgument),
        [ReplicaErrorCode.DatabaseNotFound] = ("DatabaseNotFound", ErrorCategory.ObjectNotFound),
        [ReplicaErrorCode.DatabaseUnusable] = ("DatabaseUnusable", ErrorCategory.OpenError),
        [ReplicaErrorCode.ReplicaNotWritable] = ("ReplicaNotWritable", ErrorCategory.WriteError),
        [ReplicaErrorCode.ReplicaNotReadable] = ("ReplicaNotReadable", ErrorCategory.ReadError),
        [ReplicaErrorCode.NoMatchingBackup] = ("NoMatchingBackup", ErrorCategory.ObjectNotFound),
        [ReplicaErrorCode.SnapshotMissing] = ("SnapshotMissing", ErrorCategory.ObjectNotFound),
        [ReplicaErrorCode.SegmentMissing] = ("SegmentMissing", ErrorCategory.ObjectNotFound),
        [ReplicaErrorCode.SegmentCorrupt] = ("SegmentCorrupt", ErrorCategory.InvalidData),
        [ReplicaErrorCode.RestoredDatabaseCorrupt] = ("RestoredDatabaseCorrupt", ErrorCategory.InvalidData),
        [ReplicaErrorCode.OutputExists] = ("OutputExists", ErrorCategory.ResourceExists),
        [ReplicaErrorCode.OutputNotWritable] = ("OutputNotWritable", ErrorCategory.WriteError),
        [ReplicaErrorCode.MetaNotWritable] = ("MetaNotWritable", ErrorCategory.WriteError),
        [ReplicaErrorCode.AlreadyReplicating] = ("AlreadyReplicating", ErrorCategory.ResourceBusy),
        [ReplicaErrorCode.StoreAccessDenied] = ("StoreAccessDenied", ErrorCategory.PermissionDenied),
        [ReplicaErrorCode.BucketNotFound] = ("BucketNotFound", ErrorCategory.ObjectNotFound),
        [ReplicaErrorCode.StoreRejected] = ("StoreRejected", ErrorCategory.ProtocolError),
        [ReplicaErrorCode.StoreUnreachable] = ("StoreUnreachable", ErrorCategory.ConnectionError),
        [ReplicaErrorCode.ConfigNotFound] = ("ConfigNotFound", ErrorCategory.ObjectNotFound),
        [ReplicaErrorCode.ConfigInvalid] = ("ConfigInvalid", ErrorCategory.InvalidData),
        [ReplicaErrorCode.ConfigUnknownKey] = ("ConfigUnknownKey", ErrorCategory.InvalidData),
        [ReplicaErrorCode.ConfigNotSupported] = ("ConfigNotSupported", ErrorCategory.NotImplemented),
        [ReplicaErrorCode.ConfigUnsetVariable] = ("ConfigUnsetVariable", ErrorCategory.InvalidData),
        [ReplicaErrorCode.DatabaseNotConfigured] = ("DatabaseNotConfigured", ErrorCategory.ObjectNotFound),
        [ReplicaErrorCode.ApplicationFailed] = ("ApplicationFailed", ErrorCategory.InvalidResult),
        [ReplicaErrorCode.DrillFailed] = ("DrillFailed", ErrorCategory.InvalidResult),
        [ReplicaErrorCode.Cancelled] = ("Cancelled", ErrorCategory.OperationStopped),
        [ReplicaErrorCode.Internal] = ("InternalError", ErrorCategory.InvalidResult),
    };

    public static ErrorRecord ToErrorRecord(ReplicaException e, object? target = null)
    {
        var (id, category) = Table.TryGetValue(e.Code, out var entry) ? entry : ("InternalError", ErrorCategory.InvalidResult);
        return new ErrorRecord(e, id, category, target ?? e.Target);
    }

    public static ErrorRecord ToErrorRecord(Exception e, object? target = null) => e switch
    {
        ReplicaException re => ToErrorRecord(re, target),
        OperationCanceledException => new ErrorRecord(e, "Cancelled", ErrorCategory.OperationStopped, target),
        _ => new ErrorRecord(e, "InternalError", ErrorCategory.InvalidResult, target),
    };
}
