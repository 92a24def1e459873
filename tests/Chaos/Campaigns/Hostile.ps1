# Campaign f: hostile input. Damaged replicas, damaged local state, bad configurations, bad
# arguments, bad credentials and buckets. Every case must end with a clear error id (one of the
# module's stable ids, or PowerShell's own parameter-binding ids) or, where the input is harmless,
# with the right result; nothing may be overwritten, and no wrong database may be produced.

$script:ClearErrorIds = @(
    'InvalidArgument', 'InvalidReplicaUrl', 'DatabaseNotFound', 'DatabaseUnusable', 'ReplicaNotWritable', 'ReplicaNotReadable',
    'NoMatchingBackup', 'SnapshotMissing', 'SegmentMissing', 'SegmentCorrupt', 'RestoredDatabaseCorrupt', 'OutputExists',
    'OutputNotWritable', 'MetaNotWritable', 'AlreadyReplicating', 'StoreAccessDenied', 'BucketNotFound', 'StoreRejected',
    'StoreUnreachable', 'ConfigNotFound', 'ConfigInvalid', 'ConfigUnknownKey', 'ConfigNotSupported', 'ConfigUnsetVariable',
    'DatabaseNotConfigured', 'ApplicationFailed', 'DrillFailed', 'Cancelled',
    # PowerShell's own parameter binding.
    'ParameterArgumentValidationError', 'ParameterArgumentTransformationError', 'ParameterBindingFailed', 'MissingArgument',
    'NamedParameterNotFound', 'AmbiguousParameterSet', 'CannotConvertArgumentNoMessage'
)

function Invoke-HostileCampaign {
    param([Parameter(Mandatory)]$Result)
    $Result.Title = 'f. Hostile input'
    $Result.Description = (
        'Each row is one case. "Error id" is the FullyQualifiedErrorId''s first part (or "none" when the cmdlet succeeded). A clear ' +
        'error is one of the module''s stable ids or PowerShell''s parameter-binding ids; InternalError or a raw .NET exception is not. ' +
        '"Nothing overwritten": the replica, an existing output file, the configuration and the database''s rows are unchanged. ' +
        '"No wrong database": no output file after a failure, and any database produced is intact and a committed prefix of the ' +
        'source (the whole source where the case expects the damage to be harmless). A case that fails any of these is a finding.')
    $dir = Join-Path $Chaos.Scratch 'hostile'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $rows = [System.Collections.Generic.List[object]]::new()
    $context = [pscustomobject]@{ Dir = $dir; Rows = $rows; Result = $Result; Random = (Get-ChaosRandom 'Hostile'); Sources = $null }
    try {
        $context.Sources = New-HostileSources -Dir $dir
        Invoke-DamagedReplicaCases -Context $context
        Invoke-BadArgumentCases -Context $context
        Invoke-BadConfigCases -Context $context
        Invoke-CredentialCases -Context $context
        Invoke-LocalStateCases -Context $context
    }
    finally {
        Get-Job | Where-Object { $_.PSJobTypeName -eq 'ReplicationJob' -or $_.GetType().Name -eq 'ReplicationJob' } | ForEach-Object { try { $_ | Stop-Job; $_ | Remove-Job -Force } catch { } }
        $categories = @($rows | Group-Object Category)
        $findings = @($rows | Where-Object { $_.Verdict -like 'FINDING*' })
        $unclear = @($rows | Where-Object { $_.Verdict -like 'FINDING: unclear*' })
        $wrong = @($rows | Where-Object { $_.NoWrongDb -like 'NO*' })
        $overwritten = @($rows | Where-Object { $_.NothingOverwritten -like 'NO*' })
        $skipped = @($rows | Where-Object { $_.Verdict -like 'skipped*' })
        $Result.Figures.Add((New-ChaosFigure -Name 'Cases run' -Value $rows.Count -Goal '>= 40, >= 5 per category' -Met ($rows.Count - $skipped.Count -ge 40 -and @($categories | Where-Object { @($_.Group | Where-Object { $_.Verdict -notlike 'skipped*' }).Count -lt 5 }).Count -eq 0) -Note (($categories | ForEach-Object { "$($_.Name) $($_.Count)" }) -join ', ')))
        $Result.Figures.Add((New-ChaosFigure -Name 'Cases with a clear outcome (clear error id, or the right result)' -Value ("{0} of {1}" -f ($rows.Count - $findings.Count - $skipped.Count), ($rows.Count - $skipped.Count)) -Goal 'all' -Met ($findings.Count -eq 0)))
        $Result.Figures.Add((New-ChaosFigure -Name 'Unclear errors (InternalError, raw .NET exception)' -Value $unclear.Count -Goal '0' -Met ($unclear.Count -eq 0)))
        $Result.Figures.Add((New-ChaosFigure -Name 'Wrong or silently incomplete databases produced' -Value $wrong.Count -Goal '0' -Met ($wrong.Count -eq 0)))
        $Result.Figures.Add((New-ChaosFigure -Name 'Cases that overwrote something' -Value $overwritten.Count -Goal '0' -Met ($overwritten.Count -eq 0)))
        if ($skipped.Count) { $Result.Figures.Add((New-ChaosFigure -Name 'Cases skipped' -Value $skipped.Count -Note (($skipped | ForEach-Object Case) -join '; '))) }
        foreach ($f in $findings) {
            $Result.Findings.Add((New-ChaosFinding -Campaign 'Hostile' -Title "$($f.Category): $($f.Case) ($($f.Verdict.Substring(9)))" -Evidence "error id: $($f.ErrorId); $($f.Note)"))
        }
        $Result.RowColumns = @('Category', 'Case', 'Expected', 'ErrorId', 'NothingOverwritten', 'NoWrongDb', 'Verdict', 'Note')
        foreach ($r in $rows) { $Result.Rows.Add($r) }
    }
}

#region Outcomes

function Get-ErrorIdBase {
    param([AllowNull()][string]$FullyQualifiedErrorId)
    if ([string]::IsNullOrEmpty($FullyQualifiedErrorId)) { return '' }
    ($FullyQualifiedErrorId -split ',')[0]
}

function Add-HostileRow {
    <#
    .SYNOPSIS
        Judges one case and records it. -Expected: acceptable error ids; 'ok' accepts success with the full source, 'ok-prefix' success with any committed prefix, 'accepted' any success.
    #>
    param(
        [Parameter(Mandatory)]$Context,
        [Parameter(Mandatory)][string]$Category,
        [Parameter(Mandatory)][string]$Case,
        [Parameter(Mandatory)][string[]]$Expected,
        [AllowEmptyString()][string]$ErrorId,
        [AllowEmptyString()][string]$Message = '',
        [string]$Overwritten = '',
        [string]$WrongDb = '',
        [string]$Note = '',
        [switch]$Succeeded,
        [switch]$Skipped,
        [switch]$Quiet
    )
    $id = if ($Succeeded) { 'none' } else { Get-ErrorIdBase $ErrorId }
    $verdict = 'ok'
    if ($Skipped) { $verdict = "skipped: $Note" }
    elseif ($WrongDb) { $verdict = 'FINDING: wrong database' }
    elseif ($Overwritten) { $verdict = 'FINDING: overwrote data' }
    elseif ($Succeeded -and -not ($Expected | Where-Object { $_ -in 'ok', 'ok-prefix', 'accepted' })) { $verdict = 'FINDING: hostile input accepted without an error' }
    elseif (-not $Succeeded -and ($id -notin $script:ClearErrorIds -or $id -eq '')) { $verdict = 'FINDING: unclear error' }
    elseif (-not $Succeeded -and $id -notin $Expected) { $verdict = "ok (clear, though $($Expected -join '/') was expected)" }
    $text = ConvertTo-ScrubbedText $Message
    $row = [pscustomobject][ordered]@{
        Category           = $Category
        Case               = $Case
        Expected           = ($Expected -join ' or ')
        ErrorId            = $id
        NothingOverwritten = if ($Overwritten) { "NO: $Overwritten" } else { 'yes' }
        NoWrongDb          = if ($WrongDb) { "NO: $WrongDb" } else { 'yes' }
        Verdict            = $verdict
        Note               = Limit-Text ((@($Note, $text) | Where-Object { $_ }) -join ' | ') 260
    }
    $Context.Rows.Add($row)
    if (-not $Quiet) { Write-ChaosLine 'Hostile' ("{0} / {1}: {2} -> {3}" -f $Category, $Case, $id, $verdict) }
}

function Test-HostileOutput {
    <#
    .SYNOPSIS
        Judges a restore's output file: returns '' when acceptable, else what is wrong.
    .DESCRIPTION
        -Full: only the whole source is acceptable. Without it, any intact committed prefix is.
    #>
    param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)]$Source, [switch]$Full)
    if (-not (Test-Path -LiteralPath $Path)) { return 'the cmdlet reported success but wrote no file' }
    try { $dump = Get-DbDump -Path $Path } catch { return "the output is not a readable database: $(Limit-Text $_.Exception.Message 120)" }
    $judged = Test-CommittedPrefix -Dump $dump -Ledger $Source.Ledger
    if (-not $judged.Consistent) { return ($judged.Problems -join '; ') }
    if ($Full -and $dump.digest -ne $Source.Digest) { return "an older state (max id $($dump.maxId) of $($Source.MaxId)) without any error" }
    ''
}

function Invoke-HostileRestoreCase {
    <#
    .SYNOPSIS
        Runs Restore-SqliteReplica with -Arguments into a fresh empty folder (unless -OutputPath) and judges it.
    #>
    param(
        [Parameter(Mandatory)]$Context,
        [Parameter(Mandatory)][string]$Category,
        [Parameter(Mandatory)][string]$Case,
        [Parameter(Mandatory)][string[]]$Expected,
        [Parameter(Mandatory)][hashtable]$Arguments,
        [string]$OutputPath,
        [string[]]$Watch = @(),
        $Source,
        [string]$Note = ''
    )
    if (-not $Source) { $Source = $Context.Sources.Main }
    if (-not $OutputPath) { $OutputPath = New-RestoreTarget -Parent $Context.Dir }
    $Watch = @($Watch | Where-Object { $_ })
    $outDir = [System.IO.Path]::GetDirectoryName($OutputPath)
    $before = @{}
    foreach ($w in @($Watch) + @($OutputPath)) { $before[$w] = Get-TreeFingerprint -Path $w }
    $dirBefore = @(if (Test-Path -LiteralPath $outDir -PathType Container) { Get-ChildItem -LiteralPath $outDir -Force | ForEach-Object Name })
    $errorId = ''; $message = ''; $ok = $false
    try {
        $null = Restore-SqliteReplica @Arguments -OutputPath $OutputPath -ErrorAction Stop
        $ok = $true
    }
    catch {
        $errorId = $_.FullyQualifiedErrorId
        $message = $_.Exception.Message
    }
    $overwritten = @(foreach ($w in @($Watch) + @($OutputPath)) {
        if ($w -eq $OutputPath -and ($ok -or $before[$w] -eq '<absent>')) { continue }
        if ((Get-TreeFingerprint -Path $w) -ne $before[$w]) { "'$([System.IO.Path]::GetFileName($w))' changed" }
    }) -join '; '
    $wrong = ''
    if ($ok) {
        $full = 'ok' -in $Expected
        $wrong = Test-HostileOutput -Path $OutputPath -Source $Source -Full:$full
    }
    else {
        $now = @(if (Test-Path -LiteralPath $outDir -PathType Container) { Get-ChildItem -LiteralPath $outDir -Force | ForEach-Object Name })
        $left = @($now | Where-Object { $_ -notin $dirBefore })
        if ($left.Count -gt 0) { $wrong = "left behind after the failure: $($left -join ', ')" }
    }
    Add-HostileRow -Context $Context -Category $Category -Case $Case -Expected $Expected -ErrorId $errorId -Message $message -Overwritten $overwritten -WrongDb $wrong -Note $Note -Succeeded:$ok
}

function Invoke-HostileStartCase {
    <#
    .SYNOPSIS
        Runs Start-SqliteReplication @Arguments -AsJob in this process (it fails before any job exists, or returns a job that is stopped at once) and judges it.
    #>
    param(
        [Parameter(Mandatory)]$Context,
        [Parameter(Mandatory)][string]$Category,
        [Parameter(Mandatory)][string]$Case,
        [Parameter(Mandatory)][string[]]$Expected,
        [Parameter(Mandatory)][hashtable]$Arguments,
        [string[]]$Watch = @(),
        [string]$Note = '',
        [string]$MustNotExist
    )
    $Watch = @($Watch | Where-Object { $_ })
    $before = @{}
    foreach ($w in $Watch) { $before[$w] = Get-TreeFingerprint -Path $w }
    $errorId = ''; $message = ''; $ok = $false
    try {
        $job = Start-SqliteReplication @Arguments -AsJob -ErrorAction Stop
        $ok = $true
        Start-Sleep -Milliseconds 500
        $Note = (@($Note, "accepted: job $($job.State)") | Where-Object { $_ }) -join '; '
        try { $job | Stop-Job; $job | Remove-Job -Force } catch { }
    }
    catch {
        $errorId = $_.FullyQualifiedErrorId
        $message = $_.Exception.Message
    }
    $overwritten = @(foreach ($w in $Watch) { if ((Get-TreeFingerprint -Path $w) -ne $before[$w]) { "'$([System.IO.Path]::GetFileName($w))' changed" } }) -join '; '
    if ($MustNotExist -and (Test-Path -LiteralPath $MustNotExist)) {
        $Note = (@($Note, "created '$([System.IO.Path]::GetFileName($MustNotExist))'") | Where-Object { $_ }) -join '; '
    }
    Add-HostileRow -Context $Context -Category $Category -Case $Case -Expected $Expected -ErrorId $errorId -Message $message -Overwritten $overwritten -Note $Note -Succeeded:$ok
}

#endregion

#region Sources

function New-HostileSources {
    <#
    .SYNOPSIS
        Three real replicas made by the replicator: the main one (page size 4096, several WAL indexes and segments), a foreign one (another database) and one with page size 1024.
    #>
    param([Parameter(Mandatory)][string]$Dir)
    $specs = @(
        @{ Name = 'main'; PageSize = 4096; Batches = 6 }
        @{ Name = 'foreign'; PageSize = 4096; Batches = 2 }
        @{ Name = 'small-pages'; PageSize = 1024; Batches = 2 }
    )
    $sources = [ordered]@{}
    foreach ($spec in $specs) {
        $db = Join-Path $Dir "$($spec.Name).db"
        $null = New-TestDatabase -Path $db -PageSize $spec.PageSize -Rows 20
        $replicator = Start-ChaosReplicator -Parameters @{ DatabasePath = $db; ReplicaPath = (Join-Path $Dir "$($spec.Name)-replica"); MonitorInterval = '100ms'; SyncInterval = '100ms'; MinCheckpointPageCount = 30 } -LogPath (Join-Path $Dir "$($spec.Name)-replicator.log") -NoWait | Register-ChaosChild
        $sources[$spec.Name] = [pscustomobject]@{ Name = $spec.Name; Db = $db; Replica = (Join-Path $Dir "$($spec.Name)-replica"); Replicator = $replicator; Ledger = (New-CommitLedger -InitialRows 20); Batches = $spec.Batches; Digest = $null; MaxId = $null }
    }
    foreach ($s in $sources.Values) { $null = Wait-LogLine -Path $s.Replicator.LogPath -Pattern 'wal segment written' -TimeoutSeconds 60 -Process $s.Replicator }
    for ($batch = 1; $batch -le 6; $batch++) {
        foreach ($s in $sources.Values) {
            if ($batch -gt $s.Batches) { continue }
            $out = Join-Path $Dir "$($s.Name)-batch$batch.out"
            $lines = Invoke-Writer write --db $s.Db --count 40 --rows-per-tx 4 --blob-bytes 700
            [System.IO.File]::WriteAllLines($out, [string[]]$lines)
            $null = Update-CommitLedger -Ledger $s.Ledger -StdoutPath $out
        }
        Start-Sleep -Milliseconds 450
    }
    foreach ($s in $sources.Values) {
        $code = $s.Replicator | Stop-ChaosReplicator
        if ($code -ne 0) { throw "The replicator making the $($s.Name) replica exited ${code}: $(Get-LogTail -Path $s.Replicator.LogPath -Lines 5)" }
        $dump = Get-DbDump -Path $s.Db
        $s.Digest = $dump.digest
        $s.MaxId = $dump.maxId
        $restore = Invoke-ChaosRestore -Replica ([pscustomobject]@{ Kind = 'file'; Path = $s.Replica }) -Parent $Dir
        if (-not $restore.Ok -or $restore.Dump.digest -ne $s.Digest) { throw "The pristine $($s.Name) replica does not restore to its database: $($restore.ErrorId) $($restore.Message)" }
        Remove-RestoreTarget $restore
    }
    $files = @(Get-ReplicaFile $sources['main'].Replica)
    $wal = @($files | Where-Object Kind -eq 'wal')
    $indexes = @($wal | Group-Object Index | Sort-Object { [int]$_.Name })
    if (@($files | Select-Object -ExpandProperty Generation -Unique).Count -ne 1 -or $indexes.Count -lt 3 -or @($indexes | Where-Object Count -ge 3).Count -lt 1) {
        throw "The main pristine replica has not the shape the cases need (one generation, >= 3 WAL indexes, one with >= 3 segments): $(($files | ForEach-Object { '{0}:{1}:{2}' -f $_.Kind, $_.Index, $_.Offset }) -join ' ')"
    }
    [pscustomobject]@{ Main = $sources['main']; Foreign = $sources['foreign']; SmallPages = $sources['small-pages'] }
}

function New-DamagedCopy {
    # A copy of the main pristine replica (file times kept) to damage.
    param([Parameter(Mandatory)]$Context, [Parameter(Mandatory)][string]$Name)
    $target = Join-Path $Context.Dir ("damaged-" + ($Name -replace '[^a-z0-9]+', '-'))
    Copy-ReplicaDirectory -Source $Context.Sources.Main.Replica -Destination $target
}

#endregion

#region Damaged replicas

function Invoke-DamagedReplicaCases {
    param([Parameter(Mandatory)]$Context)
    $category = 'damaged replica'
    $random = $Context.Random
    $shape = {
        param([string]$Replica)
        $files = @(Get-ReplicaFile $Replica)
        $wal = @($files | Where-Object Kind -eq 'wal')
        $byIndex = @($wal | Group-Object Index | Sort-Object { [int]$_.Name })
        $busy = @($byIndex | Where-Object Count -ge 3)[0]
        [pscustomobject]@{
            Generation      = $files[0].Generation
            Snapshot        = @($files | Where-Object Kind -eq 'snapshot')[0]
            Wal             = $wal
            MiddleSegment   = @($busy.Group)[1]
            MiddleIndex     = [int]$byIndex[1].Name
            LastOfFirst     = @($byIndex[0].Group)[-1]
            LastSegment     = $wal[-1]
            SegmentDir      = [System.IO.Path]::GetDirectoryName($wal[0].Path)
            SnapshotDir     = [System.IO.Path]::GetDirectoryName(@($files | Where-Object Kind -eq 'snapshot')[0].Path)
        }
    }
    $flip = {
        param([string]$Path, [long]$At)
        $bytes = [System.IO.File]::ReadAllBytes($Path)
        if ($At -lt 0) { $At = [long]($bytes.Length / 2) }
        $bytes[$At] = $bytes[$At] -bxor 0x5A
        [System.IO.File]::WriteAllBytes($Path, $bytes)
    }
    $truncate = {
        param([string]$Path)
        $fs = [System.IO.File]::Open($Path, 'Open', 'ReadWrite')
        try { $fs.SetLength([long]($fs.Length / 2)) } finally { $fs.Dispose() }
    }
    $cases = @(
        @{ Case = 'replica directory missing'; Expected = @('NoMatchingBackup'); Damage = { param($r, $s) Remove-Item -LiteralPath $r -Recurse -Force } }
        @{ Case = 'generations folder empty'; Expected = @('NoMatchingBackup'); Damage = { param($r, $s) Get-ChildItem -LiteralPath (Join-Path $r 'generations') | Remove-Item -Recurse -Force } }
        @{ Case = 'the only snapshot deleted'; Expected = @('SnapshotMissing', 'NoMatchingBackup'); Damage = { param($r, $s) Remove-Item -LiteralPath $s.Snapshot.Path } }
        @{ Case = 'a middle WAL segment deleted'; Expected = @('SegmentMissing'); Damage = { param($r, $s) Remove-Item -LiteralPath $s.MiddleSegment.Path } }
        @{ Case = 'a whole middle WAL index deleted'; Expected = @('SegmentMissing'); Damage = { param($r, $s) $s.Wal | Where-Object Index -eq $s.MiddleIndex | ForEach-Object { Remove-Item -LiteralPath $_.Path } } }
        @{ Case = 'the last segment of the first WAL index deleted (no name reveals it)'; Expected = @('SegmentMissing', 'SegmentCorrupt', 'RestoredDatabaseCorrupt'); Damage = { param($r, $s) Remove-Item -LiteralPath $s.LastOfFirst.Path } }
        @{ Case = 'snapshot truncated to half'; Expected = @('SegmentCorrupt'); Damage = { param($r, $s) & $truncate $s.Snapshot.Path } }
        @{ Case = 'WAL segment truncated to half'; Expected = @('SegmentCorrupt'); Damage = { param($r, $s) & $truncate $s.MiddleSegment.Path } }
        @{ Case = 'one byte flipped inside a WAL segment'; Expected = @('SegmentCorrupt'); Damage = { param($r, $s) & $flip $s.MiddleSegment.Path -1 } }
        @{ Case = 'one byte flipped inside the snapshot'; Expected = @('SegmentCorrupt'); Damage = { param($r, $s) & $flip $s.Snapshot.Path -1 } }
        @{ Case = 'LZ4 frame magic of a segment damaged'; Expected = @('SegmentCorrupt'); Damage = { param($r, $s) & $flip $s.MiddleSegment.Path 0 } }
        @{ Case = 'the last segment emptied (0 bytes)'; Expected = @('SegmentCorrupt'); Damage = { param($r, $s) [System.IO.File]::WriteAllBytes($s.LastSegment.Path, [byte[]]@()) } }
        @{ Case = 'two segments of an index swapped (reordered names)'; Expected = @('SegmentCorrupt', 'SegmentMissing'); Damage = {
                param($r, $s)
                $a = $s.MiddleSegment; $group = @($s.Wal | Where-Object Index -eq $a.Index); $b = $group[[Array]::IndexOf(@($group.Path), $a.Path) + 1]
                $tmp = "$($a.Path).swap"; Move-Item -LiteralPath $a.Path -Destination $tmp; Move-Item -LiteralPath $b.Path -Destination $a.Path; Move-Item -LiteralPath $tmp -Destination $b.Path
            } }
        @{ Case = 'a segment renamed to a wrong offset (a gap)'; Expected = @('SegmentMissing', 'SegmentCorrupt'); Damage = {
                param($r, $s)
                $m = $s.MiddleSegment; Move-Item -LiteralPath $m.Path -Destination (Join-Path $s.SegmentDir ('{0:x8}_{1:x8}.wal.lz4' -f $m.Index, ($m.Offset + 4120 * 3)))
            } }
        @{ Case = 'a segment duplicated under an overlapping offset'; Expected = @('SegmentCorrupt', 'SegmentMissing', 'ok'); Damage = {
                param($r, $s)
                $m = $s.MiddleSegment; Copy-Item -LiteralPath $m.Path -Destination (Join-Path $s.SegmentDir ('{0:x8}_{1:x8}.wal.lz4' -f $m.Index, ($m.Offset + 4120)))
            } }
        @{ Case = 'a segment of another database spliced in as the next segment'; Expected = @('SegmentCorrupt'); Damage = {
                param($r, $s)
                $foreign = @(Get-ReplicaFile $Context.Sources.Foreign.Replica | Where-Object { $_.Kind -eq 'wal' -and $_.Offset -gt 0 })[0]
                $last = $s.LastSegment
                # The next offset of the last index: decoded length is unknown here, so replace the last segment's content instead.
                Copy-Item -LiteralPath $foreign.Path -Destination $last.Path -Force
            } }
        @{ Case = 'an older generation of another database added beside ours'; Expected = @('ok'); Damage = {
                param($r, $s)
                $foreignGen = @(Get-ReplicaFile $Context.Sources.Foreign.Replica)[0].Generation
                $target = Join-Path $r "generations/$foreignGen"
                $null = Copy-ReplicaDirectory -Source (Join-Path $Context.Sources.Foreign.Replica "generations/$foreignGen") -Destination $target
                Get-ChildItem -LiteralPath $target -Recurse -File | ForEach-Object { $_.LastWriteTimeUtc = [datetime]::UtcNow.AddDays(-3) }
            } }
        @{ Case = 'snapshot replaced by one with page size 1024 (wrong page size)'; Expected = @('SegmentCorrupt'); Damage = {
                param($r, $s)
                $small = @(Get-ReplicaFile $Context.Sources.SmallPages.Replica | Where-Object Kind -eq 'snapshot')[0]
                Copy-Item -LiteralPath $small.Path -Destination $s.Snapshot.Path -Force
            } }
        @{ Case = 'oversized: 16 MiB of garbage after a segment''s LZ4 frame'; Expected = @('SegmentCorrupt', 'ok'); Damage = {
                param($r, $s)
                $junk = [byte[]]::new(16MB); $random.NextBytes($junk)
                $fs = [System.IO.File]::Open($s.MiddleSegment.Path, 'Append'); try { $fs.Write($junk, 0, $junk.Length) } finally { $fs.Dispose() }
            } }
        @{ Case = 'oversized: snapshot replaced by 64 MiB of random bytes'; Expected = @('SegmentCorrupt'); Damage = {
                param($r, $s)
                $junk = [byte[]]::new(64MB); $random.NextBytes($junk); [System.IO.File]::WriteAllBytes($s.Snapshot.Path, $junk)
            } }
        @{ Case = 'garbage names (bad hex, stray files, a file named like a generation)'; Expected = @('ok'); Damage = {
                param($r, $s)
                [System.IO.File]::WriteAllText((Join-Path $s.SegmentDir '0000000g_00000000.wal.lz4'), 'x')
                [System.IO.File]::WriteAllText((Join-Path $s.SegmentDir 'README'), 'x')
                [System.IO.File]::WriteAllText((Join-Path $s.SnapshotDir 'zzzzzzzz.snapshot.lz4'), 'x')
                [System.IO.File]::WriteAllText((Join-Path $r 'generations/0123456789abcdef'), 'not a directory')
                $null = New-Item -ItemType Directory -Path (Join-Path $r 'generations/not-a-generation/wal') -Force
            } }
        @{ Case = 'an upper-case copy of the generation (not a v0.3 name), newer'; Expected = @('ok'); Damage = {
                param($r, $s)
                # A generation id of digits alone (about 1 in 1,800) has no upper case: the copy
                # would be the generation itself (CI once copied the files onto themselves). An
                # upper-case letter in front keeps the name hex, upper case, and not v0.3's.
                $name = $s.Generation.ToUpperInvariant()
                if ($name -ceq $s.Generation) { $name = 'A' + $name.Substring(1) }
                $upper = Join-Path $r "generations/$name"
                $null = Copy-ReplicaDirectory -Source (Join-Path $r "generations/$($s.Generation)") -Destination $upper
                Remove-Item -LiteralPath @(Get-ChildItem -LiteralPath (Join-Path $upper 'wal') -File)[-1].FullName
            } }
        @{ Case = 'leftover temporary files of an interrupted upload'; Expected = @('ok'); Damage = {
                param($r, $s)
                [System.IO.File]::WriteAllBytes((Join-Path $s.SegmentDir ('{0:x8}_{1:x8}.wal.lz4.tmp' -f $s.LastSegment.Index, ($s.LastSegment.Offset + 4120))), [byte[]]::new(100))
                [System.IO.File]::WriteAllBytes((Join-Path $s.SnapshotDir '00000009.snapshot.lz4.tmp'), [byte[]]::new(100))
            } }
    )
    foreach ($c in $cases) {
        $copy = New-DamagedCopy -Context $Context -Name $c.Case
        $s = & $shape $copy
        & $c.Damage $copy $s
        $watchPath = if (Test-Path -LiteralPath $copy) { @($copy) } else { @() }
        Invoke-HostileRestoreCase -Context $Context -Category $category -Case $c.Case -Expected $c.Expected -Arguments @{ ReplicaPath = $copy } -Watch $watchPath
    }
}

#endregion

#region Bad arguments

function Invoke-BadArgumentCases {
    param([Parameter(Mandatory)]$Context)
    $category = 'bad argument'
    $main = $Context.Sources.Main
    $dir = Join-Path $Context.Dir 'arguments'
    $null = New-Item -ItemType Directory -Path $dir -Force

    Push-Location -LiteralPath $Context.Dir
    try {
        Invoke-HostileRestoreCase -Context $Context -Category $category -Case 'replica given as a relative path (-ReplicaPath main-replica)' -Expected @('ok') -Arguments @{ ReplicaPath = 'main-replica' }
    }
    finally { Pop-Location }
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case 'replica URL without a scheme (a relative path)' -Expected @('InvalidReplicaUrl') -Arguments @{ ReplicaUrl = 'main-replica' }
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case 'file://relative/dir (Litestream reads it as /relative/dir)' -Expected @('NoMatchingBackup', 'ReplicaNotReadable') -Arguments @{ ReplicaUrl = 'file://chaos-relative/replica' }
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case 'non-existent replica directory' -Expected @('NoMatchingBackup', 'ReplicaNotReadable') -Arguments @{ ReplicaPath = (Join-Path $dir 'no-such-replica') }
    $aFile = Join-Path $dir 'a-file'
    [System.IO.File]::WriteAllText($aFile, 'not a directory')
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case 'replica path is a regular file' -Expected @('NoMatchingBackup', 'ReplicaNotReadable') -Arguments @{ ReplicaPath = $aFile }
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case 'unsupported scheme gcs://' -Expected @('InvalidReplicaUrl') -Arguments @{ ReplicaUrl = 'gcs://bucket/app.db' }

    $existing = Join-Path $dir 'existing.db'
    [System.IO.File]::WriteAllText($existing, 'precious content that must survive')
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case 'output exists, no -Force' -Expected @('OutputExists') -Arguments @{ ReplicaPath = $main.Replica } -OutputPath $existing
    $outDirectory = Join-Path $dir 'a-directory'
    $null = New-Item -ItemType Directory -Path $outDirectory -Force
    [System.IO.File]::WriteAllText((Join-Path $outDirectory 'keep.txt'), 'keep')
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case 'output path is an existing directory (with -Force)' -Expected @('OutputExists', 'OutputNotWritable', 'InvalidArgument') -Arguments @{ ReplicaPath = $main.Replica; Force = $true } -OutputPath $outDirectory -Watch @($outDirectory)
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case 'output in a directory that does not exist' -Expected @('ok', 'OutputNotWritable') -Arguments @{ ReplicaPath = $main.Replica } -OutputPath (Join-Path $dir 'missing/sub/out.db')
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case '-Index and -Timestamp together' -Expected @('InvalidArgument') -Arguments @{ ReplicaPath = $main.Replica; Index = 1; Timestamp = [DateTimeOffset]::UtcNow }
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case '-Generation not 16 hex digits' -Expected @('ParameterArgumentValidationError') -Arguments @{ ReplicaPath = $main.Replica; Generation = 'not-a-generation' }
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case '-Generation that does not exist' -Expected @('NoMatchingBackup') -Arguments @{ ReplicaPath = $main.Replica; Generation = '0123456789abcdef' }
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case '-Index past the newest index' -Expected @('NoMatchingBackup', 'SegmentMissing', 'SnapshotMissing') -Arguments @{ ReplicaPath = $main.Replica; Index = 0x7000 }
    Invoke-HostileRestoreCase -Context $Context -Category $category -Case '-Timestamp before the first backup' -Expected @('NoMatchingBackup') -Arguments @{ ReplicaPath = $main.Replica; Timestamp = [DateTimeOffset]::new(2001, 1, 1, 0, 0, 0, [TimeSpan]::Zero) }

    if ($Chaos.IsRoot) {
        $ro = New-TmpfsMount -ReadOnly -Size '1m'
        Invoke-HostileRestoreCase -Context $Context -Category $category -Case 'output on a read-only file system (tmpfs ro)' -Expected @('OutputNotWritable') -Arguments @{ ReplicaPath = $main.Replica } -OutputPath (Join-Path $ro 'out.db')
        $full = New-TmpfsMount -Size '64k'
        Invoke-HostileRestoreCase -Context $Context -Category $category -Case 'output on a full file system (tmpfs 64k)' -Expected @('OutputNotWritable') -Arguments @{ ReplicaPath = $main.Replica } -OutputPath (Join-Path $full 'out.db')
        Remove-TmpfsMount -Path $ro
        Remove-TmpfsMount -Path $full
    }
    else {
        foreach ($c in 'output on a read-only file system (tmpfs ro)', 'output on a full file system (tmpfs 64k)') {
            Add-HostileRow -Context $Context -Category $category -Case $c -Expected @('OutputNotWritable') -Skipped -Note 'needs root for tmpfs mounts'
        }
    }

    # Start-SqliteReplication with a database that cannot be replicated.
    $notSqlite = Join-Path $dir 'not-sqlite.db'
    $junk = [byte[]]::new(8192); $Context.Random.NextBytes($junk); [System.IO.File]::WriteAllBytes($notSqlite, $junk)
    Invoke-HostileStartCase -Context $Context -Category $category -Case 'database file is not SQLite (random bytes)' -Expected @('DatabaseUnusable') -Arguments @{ DatabasePath = $notSqlite; ReplicaPath = (Join-Path $dir 'r-notsqlite') } -Watch @($notSqlite)
    $textFile = Join-Path $dir 'text.db'
    [System.IO.File]::WriteAllText($textFile, "SQLite format 3`0 but not really a database`n")
    Invoke-HostileStartCase -Context $Context -Category $category -Case 'database file with a SQLite header and garbage after it' -Expected @('DatabaseUnusable') -Arguments @{ DatabasePath = $textFile; ReplicaPath = (Join-Path $dir 'r-text') } -Watch @($textFile)
    Invoke-HostileStartCase -Context $Context -Category $category -Case 'database path is a directory' -Expected @('DatabaseUnusable', 'DatabaseNotFound', 'InvalidArgument') -Arguments @{ DatabasePath = $outDirectory; ReplicaPath = (Join-Path $dir 'r-dir') }

    # A rollback-journal database that another process holds a read transaction on: it cannot switch to WAL.
    $journal = Join-Path $dir 'journal.db'
    $null = Invoke-Writer init --db $journal --journal delete
    $null = Invoke-Writer write --db $journal --count 10
    $holder = Start-TestProcess -FilePath '/bin/sh' -ArgumentList @('-c', '(echo "BEGIN; SELECT count(*) FROM t;"; sleep 30) | sqlite3 "$0"', $journal) -LogPath (Join-Path $dir 'holder.log') -Name 'sqlite3' | Register-ChaosChild
    Start-Sleep -Milliseconds 700
    $journalBefore = (Get-DbDump -Path $journal).digest
    Invoke-HostileStartCase -Context $Context -Category $category -Case 'rollback-journal database held by another reader (cannot switch to WAL)' -Expected @('DatabaseUnusable') -Arguments @{ DatabasePath = $journal; ReplicaPath = (Join-Path $dir 'r-journal') }
    $null = $holder | Stop-TestProcess -Signal KILL -TimeoutSeconds 5
    if ((Get-DbDump -Path $journal).digest -ne $journalBefore) { $Context.Rows[-1].NothingOverwritten = 'NO: the rows of the journal-mode database changed'; $Context.Rows[-1].Verdict = 'FINDING: overwrote data' }

    $typo = Join-Path $dir 'no-such-dir/app.db'
    Invoke-HostileStartCase -Context $Context -Category $category -Case 'database in a directory that does not exist (a typo)' -Expected @('DatabaseNotFound', 'accepted') -Arguments @{ DatabasePath = $typo; ReplicaPath = (Join-Path $dir 'r-typo') } -MustNotExist (Join-Path $dir 'no-such-dir') -Note 'documented: a missing database is waited for'
    if ($Chaos.IsRoot) {
        $ro = New-TmpfsMount -ReadOnly -Size '1m'
        Invoke-HostileStartCase -Context $Context -Category $category -Case 'replica directory on a read-only file system' -Expected @('ReplicaNotWritable') -Arguments @{ DatabasePath = $main.Db; ReplicaPath = (Join-Path $ro 'replica') } -Watch @($main.Replica)
        Remove-TmpfsMount -Path $ro
    }
    else {
        Add-HostileRow -Context $Context -Category $category -Case 'replica directory on a read-only file system' -Expected @('ReplicaNotWritable') -Skipped -Note 'needs root for tmpfs mounts'
    }
}

#endregion

#region Bad configurations

function Invoke-BadConfigCases {
    param([Parameter(Mandatory)]$Context)
    $category = 'bad config'
    $dir = Join-Path $Context.Dir 'configs'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $db = Join-Path $dir 'app.db'
    $null = New-TestDatabase -Path $db -Rows 5
    $replica = Join-Path $dir 'replica'
    $good = @(
        'dbs:'
        "  - path: `"$db`""
        '    replicas:'
        '      - type: file'
        "        path: `"$replica`""
    )
    $withLine = { param([string[]]$Extra) (@($good) + $Extra) -join "`n" }
    $cases = [ordered]@{
        'YAML syntax error (unclosed quote)'              = @{ Expected = @('ConfigInvalid'); Text = "dbs:`n  - path: `"$db`n    replicas: []`n" }
        'tab used for indentation'                        = @{ Expected = @('ConfigInvalid'); Text = "dbs:`n`t- path: `"$db`"`n" }
        'unknown top-level key'                           = @{ Expected = @('ConfigUnknownKey'); Text = (& $withLine 'db-typo: true') }
        'unknown replica key (typo)'                      = @{ Expected = @('ConfigUnknownKey'); Text = (& $withLine '        sync-intreval: 1s') }
        "bad duration '7d'"                               = @{ Expected = @('ConfigInvalid'); Text = (& $withLine '        retention: 7d') }
        "duration without a unit ('5')"                   = @{ Expected = @('ConfigInvalid'); Text = (& $withLine '        sync-interval: 5') }
        'negative duration'                               = @{ Expected = @('ConfigInvalid'); Text = (& $withLine '        snapshot-interval: -5s') }
        'unset environment variable'                      = @{ Expected = @('ConfigUnsetVariable'); Text = (& $withLine '        retention: ${CHAOS_SURELY_UNSET_VARIABLE}') }
        "unclosed '`${' in a value"                        = @{ Expected = @('ConfigInvalid'); Text = (& $withLine '        retention: ${CHAOS_OPEN') }
        'duplicate replica names'                         = @{ Expected = @('InvalidArgument', 'ConfigInvalid'); Text = (& $withLine @('      - type: file', "        path: `"$replica-2`"")) }
        'the same database listed twice'                  = @{ Expected = @('ConfigInvalid', 'AlreadyReplicating', 'InvalidArgument'); Text = ((@($good) + @("  - path: `"$db`"", '    replicas:', '      - type: file', "        path: `"$replica-3`"")) -join "`n") }
        'a key given twice in one mapping'                = @{ Expected = @('ConfigInvalid'); Text = (& $withLine "        path: `"$replica-4`"") }
        'empty file'                                      = @{ Expected = @('ConfigInvalid'); Text = '' }
        'binary garbage'                                  = @{ Expected = @('ConfigInvalid'); Bytes = $true }
        "'dbs' is not a list"                             = @{ Expected = @('ConfigInvalid'); Text = "dbs: just-a-string`n" }
        'unsupported replica type gcs'                    = @{ Expected = @('ConfigNotSupported'); Text = "dbs:`n  - path: `"$db`"`n    replicas:`n      - type: gcs`n        bucket: b`n" }
        'age encryption (not supported)'                  = @{ Expected = @('ConfigNotSupported'); Text = (& $withLine @('        age:', '          recipients: [age1example]')) }
        "'addr' without a port"                           = @{ Expected = @('ConfigInvalid'); Text = ("addr: localhost`n" + ($good -join "`n")) }
        'access key without its secret'                   = @{ Expected = @('ConfigInvalid'); Text = "access-key-id: AKIAONLYHALF`ndbs:`n  - path: `"$db`"`n    replicas:`n      - type: s3`n        bucket: b`n        endpoint: http://127.0.0.1:9`n" }
        'file does not exist'                             = @{ Expected = @('ConfigNotFound'); Missing = $true }
        'path is a directory'                             = @{ Expected = @('ConfigNotFound'); Directory = $true }
        'unreadable: a symbolic link loop'                = @{ Expected = @('ConfigNotFound'); Loop = $true }
    }
    $number = 0
    foreach ($name in $cases.Keys) {
        $number++
        $c = $cases[$name]
        $path = Join-Path $dir ("config-{0:d2}.yml" -f $number)
        if ($c.ContainsKey('Text')) { [System.IO.File]::WriteAllText($path, $c.Text) }
        elseif ($c.ContainsKey('Bytes')) { $junk = [byte[]]::new(4096); $Context.Random.NextBytes($junk); [System.IO.File]::WriteAllBytes($path, $junk) }
        elseif ($c.ContainsKey('Directory')) { $null = New-Item -ItemType Directory -Path $path }
        elseif ($c.ContainsKey('Loop')) { $null = New-Item -ItemType SymbolicLink -Path $path -Target "$path.loop"; $null = New-Item -ItemType SymbolicLink -Path "$path.loop" -Target $path }
        $meta = Join-Path $dir '.app.db-litestream'
        if (Test-Path -LiteralPath $meta) { Remove-Item -LiteralPath $meta -Recurse -Force }
        $watch = @($db) + @(if ($c.ContainsKey('Text') -or $c.ContainsKey('Bytes')) { $path })
        Invoke-HostileStartCase -Context $Context -Category $category -Case $name -Expected $c.Expected -Arguments @{ ConfigPath = $path } -Watch $watch -MustNotExist $meta
        # The same file given to Restore-SqliteReplica must fail as clearly (noted, not a row of its own).
        $restoreId = ''
        try { $null = Restore-SqliteReplica -ConfigPath $path -DatabasePath $db -OutputPath (Join-Path $dir "restored-$number.db") -ErrorAction Stop; $restoreId = 'none' }
        catch { $restoreId = Get-ErrorIdBase $_.FullyQualifiedErrorId }
        $row = $Context.Rows[-1]
        $row.Note = Limit-Text ("Restore-SqliteReplica: $restoreId | " + $row.Note) 260
        if ($restoreId -ne 'none' -and $restoreId -notin $script:ClearErrorIds -and $row.Verdict -notlike 'FINDING*') { $row.Verdict = 'FINDING: unclear error (from Restore-SqliteReplica)' }
        if (Test-Path -LiteralPath (Join-Path $dir "restored-$number.db")) { Remove-Item -LiteralPath (Join-Path $dir "restored-$number.db") -Force }
    }
}

#endregion

#region Credentials and buckets

function Invoke-CredentialCases {
    param([Parameter(Mandatory)]$Context)
    $category = 'credentials and buckets'
    $s3 = Get-ChaosS3
    $proxy = $s3.Proxy
    $dir = Join-Path $Context.Dir 'credentials'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $db = Join-Path $dir 'app.db'
    $null = New-TestDatabase -Path $db -Rows 5
    $bucket = New-ChaosBucket -Name 'hostile'
    # A real backup in the bucket, so a refused request is the only reason for a failure.
    $seed = Start-ChaosReplicator -Parameters @{ DatabasePath = $db; ReplicaUrl = "s3://$bucket/app.db"; Endpoint = $proxy.Endpoint; SkipVerify = $true; SyncInterval = '200ms' } -LogPath (Join-Path $dir 'seed.log') | Register-ChaosChild
    $null = Wait-LogLine -Path $seed.LogPath -Pattern 'wal segment written' -TimeoutSeconds 60 -Process $seed
    $null = $seed | Stop-ChaosReplicator
    $url = "s3://$bucket/app.db"
    $base = @{ ReplicaUrl = $url; Endpoint = $proxy.Endpoint; SkipVerify = $true }
    $bucketState = { Get-BucketListing -Endpoint $s3.Moto.Endpoint -Bucket $bucket }
    $source = [pscustomobject]@{ Ledger = (New-CommitLedger -InitialRows 5); Digest = (Get-DbDump -Path $db).digest; MaxId = 5 }

    $run = {
        param([string]$Case, [string[]]$Expected, [hashtable]$Arguments, [scriptblock]$Before, [scriptblock]$After, [switch]$NoStart)
        $listing = & $bucketState
        if ($Before) { & $Before }
        try {
            Invoke-HostileRestoreCase -Context $Context -Category $category -Case $Case -Expected $Expected -Arguments $Arguments -Source $source
            $restoreRow = $Context.Rows[-1]
            if (-not $NoStart) {
                $startArguments = @{ DatabasePath = $db } + $Arguments
                $startId = ''
                try { $job = Start-SqliteReplication @startArguments -AsJob -ErrorAction Stop; $startId = 'none (accepted)'; $job | Stop-Job; $job | Remove-Job -Force }
                catch { $startId = Get-ErrorIdBase $_.FullyQualifiedErrorId }
                $restoreRow.Note = Limit-Text ("Start-SqliteReplication: $startId | " + $restoreRow.Note) 260
                if ($startId -like 'none*' -and $restoreRow.Verdict -notlike 'FINDING*' -and $restoreRow.ErrorId -ne 'none') { $restoreRow.Verdict = 'FINDING: hostile input accepted without an error (Start-SqliteReplication)' }
                elseif ($startId -notlike 'none*' -and $startId -notin $script:ClearErrorIds -and $restoreRow.Verdict -notlike 'FINDING*') { $restoreRow.Verdict = 'FINDING: unclear error (from Start-SqliteReplication)' }
            }
        }
        finally {
            if ($After) { & $After }
            Clear-S3Fault -Proxy $proxy
        }
        if ((& $bucketState) -ne $listing) {
            $row = $Context.Rows[-1]
            $row.NothingOverwritten = 'NO: the bucket changed'
            if ($row.Verdict -notlike 'FINDING*') { $row.Verdict = 'FINDING: overwrote data' }
        }
    }

    & $run 'bucket does not exist' @('BucketNotFound') @{ ReplicaUrl = 's3://chaos-no-such-bucket-4711/app.db'; Endpoint = $proxy.Endpoint; SkipVerify = $true }
    & $run 'bucket name invalid (upper case, underscore)' @('InvalidReplicaUrl', 'BucketNotFound', 'StoreRejected') @{ ReplicaUrl = 's3://Bad_Bucket/app.db'; Endpoint = $proxy.Endpoint; SkipVerify = $true }
    & $run 'credentials refused: 403 InvalidAccessKeyId' @('StoreAccessDenied') $base -Before { $null = Set-S3Fault -Proxy $proxy -Kind status -Status 403 -Code InvalidAccessKeyId -Message 'The AWS Access Key Id you provided does not exist in our records.' -Count -1 }
    & $run 'signature refused: 403 SignatureDoesNotMatch' @('StoreAccessDenied') $base -Before { $null = Set-S3Fault -Proxy $proxy -Kind status -Status 403 -Code SignatureDoesNotMatch -Message 'The request signature we calculated does not match the signature you provided.' -Count -1 }
    & $run 'request refused: 400 InvalidRequest' @('StoreRejected') $base -Before { $null = Set-S3Fault -Proxy $proxy -Kind status -Status 400 -Code InvalidRequest -Message 'Missing x-amz-content-sha256' -Count -1 }
    & $run 'no credentials anywhere' @('StoreAccessDenied') $base -Before {
        $script:SavedKeys = @{}
        foreach ($n in 'LITESTREAM_ACCESS_KEY_ID', 'LITESTREAM_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_PROFILE') { $script:SavedKeys[$n] = [Environment]::GetEnvironmentVariable($n); [Environment]::SetEnvironmentVariable($n, $null) }
        # The AWS chain must not find a profile or an instance role either.
        $script:SavedKeys['AWS_SHARED_CREDENTIALS_FILE'] = $env:AWS_SHARED_CREDENTIALS_FILE; $env:AWS_SHARED_CREDENTIALS_FILE = (Join-Path $dir 'no-credentials-file')
        $script:SavedKeys['AWS_CONFIG_FILE'] = $env:AWS_CONFIG_FILE; $env:AWS_CONFIG_FILE = (Join-Path $dir 'no-config-file')
        $script:SavedKeys['AWS_EC2_METADATA_DISABLED'] = $env:AWS_EC2_METADATA_DISABLED; $env:AWS_EC2_METADATA_DISABLED = 'true'
    } -After { foreach ($n in $script:SavedKeys.Keys) { [Environment]::SetEnvironmentVariable($n, $script:SavedKeys[$n]) } }
    $empty = [System.Management.Automation.PSCredential]::new('AKIACHAOSEMPTYSECRET', [System.Security.SecureString]::new())
    & $run '-Credential with an empty secret' @('StoreAccessDenied', 'InvalidArgument', 'ok-prefix') ($base + @{ Credential = $empty })
    & $run 'TLS certificate not trusted (no -SkipVerify)' @('StoreUnreachable', 'StoreRejected') @{ ReplicaUrl = $url; Endpoint = $proxy.Endpoint } -NoStart
    & $run 'endpoint is not an S3 server (the proxy''s control port)' @('StoreRejected', 'StoreUnreachable', 'BucketNotFound', 'NoMatchingBackup') @{ ReplicaUrl = $url; Endpoint = $proxy.ControlUrl }
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0); $listener.Start(); $closed = $listener.LocalEndpoint.Port; $listener.Stop()
    & $run 'endpoint refuses connections (closed port)' @('StoreUnreachable') @{ ReplicaUrl = $url; Endpoint = "https://127.0.0.1:$closed"; SkipVerify = $true } -NoStart
}

function Get-BucketListing {
    # Keys and ETags of every object in a bucket, read from moto directly (unproxied).
    param([Parameter(Mandatory)][string]$Endpoint, [Parameter(Mandatory)][string]$Bucket)
    $client = [System.Net.Http.HttpClient]::new()
    try {
        $xml = $client.GetStringAsync("$Endpoint/$Bucket`?list-type=2&max-keys=1000").GetAwaiter().GetResult()
    }
    finally { $client.Dispose() }
    (@([regex]::Matches($xml, '<Key>([^<]*)</Key>.*?<ETag>([^<]*)</ETag>') | ForEach-Object { $_.Groups[1].Value + '=' + $_.Groups[2].Value } | Where-Object { $_ -notlike '*sqlitereplica-lease*' } | Sort-Object) -join "`n")
}

#endregion

#region Local state

function Invoke-LocalStateCases {
    param([Parameter(Mandatory)]$Context)
    $category = 'damaged local state'
    $dir = Join-Path $Context.Dir 'local'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $db = Join-Path $dir 'app.db'
    $null = New-TestDatabase -Path $db -Rows 50
    $ledger = New-CommitLedger -InitialRows 50
    $meta = Join-Path $dir '.app.db-litestream'
    $replica = [pscustomobject]@{ Kind = 'file'; Path = (Join-Path $dir 'replica') }
    $parameters = @{ DatabasePath = $db; ReplicaPath = $replica.Path; MonitorInterval = '100ms'; SyncInterval = '200ms' }
    $logIndex = 0
    $start = {
        $script:LocalLogIndex++
        Start-ChaosReplicator -Parameters $parameters -LogPath (Join-Path $dir ("replicator-{0}.log" -f $script:LocalLogIndex)) | Register-ChaosChild
    }
    $script:LocalLogIndex = 0
    $writerOut = Join-Path $dir 'writer.out'
    $writer = Start-Writer write --db $db --count 0 --interval-ms 20 --rows-per-tx 2 --blob-bytes 500 -StdoutPath $writerOut | Register-ChaosChild
    $replicator = & $start
    $null = Wait-LogLine -Path $replicator.LogPath -Pattern 'wal segment written' -TimeoutSeconds 60 -Process $replicator

    $currentShadow = {
        # The newest shadow file of any generation (the generation file itself may be the damaged part).
        @(Get-ChildItem -LiteralPath (Join-Path $meta 'generations') -Recurse -Filter '*.wal' | Sort-Object LastWriteTimeUtc)[-1].FullName
    }
    $running = @(
        @{ Case = 'meta directory deleted while replicating'; Damage = { Remove-Item -LiteralPath $meta -Recurse -Force } }
        @{ Case = 'meta generation file overwritten with garbage while replicating'; Damage = { [System.IO.File]::WriteAllText((Join-Path $meta 'generation'), "garbage`n") } }
        @{ Case = 'shadow WAL truncated to half while replicating'; Damage = { $p = & $currentShadow; $fs = [System.IO.File]::Open($p, 'Open', 'ReadWrite', 'ReadWrite'); try { $fs.SetLength([long]($fs.Length / 2)) } finally { $fs.Dispose() } } }
        @{ Case = 'random bytes appended to the shadow WAL while replicating'; Damage = { $p = & $currentShadow; $junk = [byte[]]::new(8192); $Context.Random.NextBytes($junk); $fs = [System.IO.File]::Open($p, 'Append', 'Write', 'ReadWrite'); try { $fs.Write($junk, 0, $junk.Length) } finally { $fs.Dispose() } } }
        @{ Case = 'status file replaced by garbage while replicating'; Damage = { [System.IO.File]::WriteAllText((Join-Path $meta 'sqlitereplica-status.json'), '{ not json') }; Status = $true }
    )
    foreach ($c in $running) {
        if ($replicator.HasExited) { $replicator = & $start }
        $offset = (Read-ChaosText -Path $replicator.LogPath).Length
        $statusNote = ''
        try {
            & $c.Damage
            if ($c.ContainsKey('Status')) {
                try {
                    $st = @(Get-SqliteReplicationStatus -DatabasePath $db -ErrorAction Stop)[0]
                    $statusNote = "Get-SqliteReplicationStatus right after: Healthy=$($st.Healthy) ($($st.Reason))"
                }
                catch { $statusNote = "Get-SqliteReplicationStatus right after: $(Get-ErrorIdBase $_.FullyQualifiedErrorId)"; $statusId = Get-ErrorIdBase $_.FullyQualifiedErrorId }
            }
        }
        catch { $statusNote = "damage failed: $($_.Exception.Message)" }
        Start-Sleep -Seconds 3
        $records = @(Get-ChaosLogLine -LogPath $replicator.LogPath -Offset $offset)
        $ids = @($records | Where-Object Kind -eq 'ERRORID' | ForEach-Object { Get-ErrorIdBase $_.Text })
        $warnings = @($records | Where-Object { $_.Kind -eq 'WARNING' } | ForEach-Object Text)
        $exited = $replicator.HasExited
        $restore = Invoke-ChaosRestore -Replica $replica -Parent $dir
        $null = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
        $wrong = ''
        if (-not $restore.Ok) { $wrong = "the replica does not restore: $($restore.ErrorId)" }
        else {
            $judged = Test-CommittedPrefix -Dump $restore.Dump -Ledger $ledger -UnreportedRows 2
            if (-not $judged.Consistent) { $wrong = $judged.Problems -join '; ' }
        }
        Remove-RestoreTarget $restore
        $note = (@($statusNote, $(if ($exited) { "the replicator exited ($($replicator.ExitCode))" } else { 'the replicator kept running' }), $(if ($warnings.Count) { 'warned: ' + (Limit-Text $warnings[0] 140) })) | Where-Object { $_ }) -join '; '
        if ($ids.Count -gt 0) {
            Add-HostileRow -Context $Context -Category $category -Case $c.Case -Expected @('MetaNotWritable', 'recovered') -ErrorId $ids[0] -Message (@($records | Where-Object Kind -eq 'ERROR' | ForEach-Object Text) | Select-Object -First 1) -WrongDb $wrong -Note $note
        }
        else {
            Add-HostileRow -Context $Context -Category $category -Case $c.Case -Expected @('MetaNotWritable', 'accepted') -Succeeded -WrongDb $wrong -Note "recovered without an error; $note"
        }
    }

    # The end of the running cases: everything committed must be in the replica.
    $null = $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30
    $lastId = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
    if ($replicator.HasExited) { $replicator = & $start; Start-Sleep -Seconds 2 }
    $code = $replicator | Stop-ChaosReplicator
    $live = Get-DbDump -Path $db
    $final = Invoke-ChaosRestore -Replica $replica -Parent $dir
    $equal = $final.Ok -and $final.Dump.digest -eq $live.digest -and $live.maxId -eq $lastId
    $Context.Result.Notes.Add("damaged local state: after the running cases the replica $(if ($equal) { 'restores to exactly the live database' } else { 'does NOT restore to the live database' }) (replicator exit $code, writer last commit $lastId, restore $(if ($final.Ok) { "$($final.Result.Position) max id $($final.Dump.maxId)" } else { $final.ErrorId }))")
    if (-not $equal) { $Context.Result.Findings.Add((New-ChaosFinding -Campaign 'Hostile' -Title 'After damage to the local state the replica does not hold every commit' -Evidence "writer last commit $lastId, live max id $($live.maxId), restore $(if ($final.Ok) { "$($final.Result.Position) max id $($final.Dump.maxId)" } else { "$($final.ErrorId) $($final.Message)" })")) }
    Remove-RestoreTarget $final

    # Damage while stopped, then a start.
    Remove-Item -LiteralPath @(Get-ChildItem -LiteralPath $meta -Recurse -Filter '*.wal' | ForEach-Object FullName) -Force
    $null = Invoke-Writer write --db $db --count 20
    $r = & $start
    Start-Sleep -Seconds 2
    $code = $r | Stop-ChaosReplicator
    $live = Get-DbDump -Path $db
    $after = Invoke-ChaosRestore -Replica $replica -Parent $dir
    $ids = @(Get-ChaosLogLine -LogPath $r.LogPath | Where-Object Kind -eq 'ERRORID' | ForEach-Object { Get-ErrorIdBase $_.Text })
    $wrong = if (-not $after.Ok) { "restore failed: $($after.ErrorId)" } elseif ($after.Dump.digest -ne $live.digest) { "the replica (max id $($after.Dump.maxId)) lacks commits of the live database (max id $($live.maxId))" } else { '' }
    $warn = @(Get-ChaosLogLine -LogPath $r.LogPath | Where-Object Kind -eq 'WARNING' | ForEach-Object Text) | Select-Object -First 1
    if ($ids.Count) { Add-HostileRow -Context $Context -Category $category -Case 'shadow WAL files deleted while stopped, then a start' -Expected @('recovered') -ErrorId $ids[0] -WrongDb $wrong -Note "exit $code" }
    else { Add-HostileRow -Context $Context -Category $category -Case 'shadow WAL files deleted while stopped, then a start' -Expected @('accepted') -Succeeded -WrongDb $wrong -Note "recovered: $(Limit-Text $warn 150)" }
    Remove-RestoreTarget $after

    $lock = Join-Path $meta 'sqlitereplica.lock'
    Remove-Item -LiteralPath $lock -Force -ErrorAction SilentlyContinue
    $null = New-Item -ItemType Directory -Path $lock
    Invoke-HostileStartCase -Context $Context -Category $category -Case 'lock file replaced by a directory' -Expected @('MetaNotWritable', 'AlreadyReplicating') -Arguments @{ DatabasePath = $db; ReplicaPath = $replica.Path } -Watch @($replica.Path)
    Remove-Item -LiteralPath $lock -Recurse -Force

    $metaFile = Join-Path $dir 'meta-is-a-file'
    [System.IO.File]::WriteAllText($metaFile, 'not a directory')
    Invoke-HostileStartCase -Context $Context -Category $category -Case '-MetaPath is a regular file' -Expected @('MetaNotWritable') -Arguments @{ DatabasePath = $db; ReplicaPath = $replica.Path; MetaPath = $metaFile } -Watch @($replica.Path, $metaFile)
    if ($Chaos.IsRoot) {
        $ro = New-TmpfsMount -ReadOnly -Size '1m'
        Invoke-HostileStartCase -Context $Context -Category $category -Case 'meta directory on a read-only file system' -Expected @('MetaNotWritable') -Arguments @{ DatabasePath = $db; ReplicaPath = $replica.Path; MetaPath = (Join-Path $ro 'meta') } -Watch @($replica.Path)
        Remove-TmpfsMount -Path $ro
        # A WAL of several MB (held open, so it is not checkpointed away): its shadow copy cannot fit in 64k.
        $holder = Start-Writer write --db $db --count 600 --blob-bytes 4000 --autocheckpoint 0 --hold-open -StdoutPath (Join-Path $dir 'holder.out') | Register-ChaosChild
        $null = Wait-Until -TimeoutSeconds 60 -Message 'the writer to hold its WAL open' -Condition { (Read-ChaosText -Path (Join-Path $dir 'holder.out')) -match '(?m)^holding' }
        $full = New-TmpfsMount -Size '64k'
        Invoke-HostileStartCase -Context $Context -Category $category -Case 'meta directory on a full file system (tmpfs 64k, a WAL of several MB)' -Expected @('MetaNotWritable') -Arguments @{ DatabasePath = $db; ReplicaPath = $replica.Path; MetaPath = (Join-Path $full 'meta') }
        Remove-TmpfsMount -Path $full
        $null = $holder | Stop-TestProcess -Signal TERM -TimeoutSeconds 30
    }
    else {
        foreach ($c in 'meta directory on a read-only file system', 'meta directory on a full file system (tmpfs 64k, a WAL of several MB)') {
            Add-HostileRow -Context $Context -Category $category -Case $c -Expected @('MetaNotWritable') -Skipped -Note 'needs root for tmpfs mounts'
        }
    }
}

#endregion
