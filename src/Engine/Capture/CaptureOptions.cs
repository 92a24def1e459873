namespace SqliteReplica.Engine.Capture;

/// <summary>How one database is watched and checkpointed. Defaults are Litestream v0.3's.</summary>
public sealed record CaptureOptions
{
    /// <summary>Where the shadow WAL lives; null means Litestream's default beside the database.</summary>
    public string? MetaPath { get; init; }

    /// <summary>Fallback poll interval; file-change notifications wake the monitor sooner.</summary>
    public TimeSpan MonitorInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The shortest time between two looks at the WAL woken by file-change notifications. The
    /// first change after a quiet spell is looked at at once (sparse writes reach the replica in
    /// milliseconds); under steady writes the notifications of one spacing are merged into one look.
    /// Uploads are not delayed by it: a syncer takes a fresh look just before each upload.
    /// Measured (2 KB rows in 50-row transactions at full speed): 0 ms spacing cost twice the CPU
    /// per MB shipped of 200 ms.
    public TimeSpan MinLookSpacing { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>PASSIVE checkpoint when the database file is this old and the WAL has frames (zero: off).</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The shortest time between two of the capture's routine checkpoints (PASSIVE at
    /// <see cref="MinCheckpointPageCount"/> or after <see cref="CheckpointInterval"/>, RESTART at
    /// <see cref="MaxCheckpointPageCount"/>); the TRUNCATE and index-size ones are never held back,
    /// and only a checkpoint that restarted the WAL starts the spacing. Each checkpoint takes the write lock for
    /// a moment and restarts the WAL under the application: measured with a writer committing
    /// 50,000 single-row transactions a second for about 1 s, a checkpoint at every 200 ms look
    /// left it about 0.87-0.91 of its rate, one a second 0.96. The WAL then holds up to a second
    /// of writes between restarts, as Litestream's does (it checkpoints once per one-second
    /// tick); in 4 s runs that larger WAL costs the writer about what the saved checkpoints gave
    /// back (0.85 without the spacing, 0.83 with it, within the noise of 4 rounds).
    /// </summary>
    public TimeSpan MinCheckpointSpacing { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>PASSIVE checkpoint at this many WAL pages.</summary>
    public int MinCheckpointPageCount { get; init; } = 1000;

    /// <summary>RESTART checkpoint at this many WAL pages (zero: off).</summary>
    public int MaxCheckpointPageCount { get; init; } = 10000;

    /// <summary>
    /// A TRUNCATE checkpoint when the real WAL file reaches this many pages: the WAL file is cut
    /// back to the frames it holds by the replicator's own write that restarts the WAL (see
    /// <see cref="CheckpointMode.Truncate"/>).
    /// </summary>
    public int TruncatePageCount { get; init; } = 500000;

    /// <summary>How long SQLite waits for a lock before answering busy.</summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a PASSIVE checkpoint (which never waits by itself) is tried again while another
    /// checkpoint, the application's, holds the checkpoint lock.
    /// </summary>
    public TimeSpan CheckpointLockPatience { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// An index is never allowed to reach 4 GiB (Litestream v0.3.13 silently drops segments past
    /// it). Past this size a RESTART checkpoint is forced; if that cannot start a new index, a
    /// new generation is started before <see cref="HardIndexBytes"/>.
    /// </summary>
    public long MaxIndexBytes { get; init; } = 0xE000_0000L;

    /// <summary>
    /// The size no index may pass (4 GiB - 1: segment offsets must fit 8 hex digits for
    /// Litestream v0.3.13). Copying that would cross it starts a new generation instead.
    /// </summary>
    public long HardIndexBytes { get; init; } = 0xFFFF_FFFFL;

    /// <summary>
    /// Bounds the local disk the shadow WAL takes while replicas cannot keep up (a store down
    /// for hours): the larger of this and <see cref="ShadowCapDatabaseMultiple"/> times the
    /// database size. Past it, continuity is given up: the shadow restarts from the live WAL and
    /// the replicas get a new generation (a fresh snapshot) once the store is back. The
    /// application is never blocked. The monitor checks the cap before each look (a copy that
    /// would pass it gives up continuity first) and after it; the look a replica takes just
    /// before an upload is not checked, so the shadow can pass the cap by what one look copies.
    /// The live WAL is restarted and cut before the new generation copies it (unless the
    /// application holds the write lock through five busy timeouts), and the old generation's
    /// shadow is removed before that copy. While a snapshot is being taken continuity cannot be
    /// given up (the snapshot's position is in the current generation): the shadow grows past
    /// the cap until it ends.
    /// </summary>
    public long ShadowCapMinimumBytes { get; init; } = 256L << 20;

    public double ShadowCapDatabaseMultiple { get; init; } = 2.0;
}
