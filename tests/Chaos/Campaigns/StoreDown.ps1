# Campaign e: the S3 endpoint down for a long spell while the application keeps writing. Samples
# the local shadow WAL, what Get-SqliteReplicationStatus and the status file report, then brings
# the endpoint back and measures recovery; nothing committed may be lost.

function Invoke-StoreDownCampaign {
    param([Parameter(Mandatory)]$Result)
    $downSeconds = if ($Chaos.Quick) { 60 } else { 600 }
    $sampleSeconds = if ($Chaos.Quick) { 5 } else { 30 }
    $Result.Title = "e. Store down for a long time ($downSeconds s)"
    $burstStart = if ($Chaos.Quick) { 10 } else { 60 }
    $burstLimit = if ($Chaos.Quick) { 20 } else { 60 }
    $Result.Description = (
        "The S3 proxy refuses connections for $downSeconds s while the writer commits 2 rows of 1000 bytes every 10 ms. Every $sampleSeconds s the " +
        'campaign records the shadow WAL size on disk, Get-SqliteReplicationStatus (Healthy, reason, bytes pending, failures) and the ' +
        'status file''s shadow cap fields. The shadow cap (at least 256 MiB, or twice the database) cannot be lowered from the cmdlet: ' +
        "to reach it, a second writer (its own table, synchronous=NORMAL, 1000-byte rows, no pause) bursts from $burstStart s into the outage " +
        "until the status file says continuity was given up (at most $burstLimit s), the shadow on disk sampled every 250 ms meanwhile. " +
        'After the outage: the time until status is healthy again, ' +
        'the time until a restore holds every commit reported when the endpoint came back, and at the end (writers stopped, SIGTERM) ' +
        'the restore must equal the live database (both tables).')
    $s3 = Get-ChaosS3
    $proxy = $s3.Proxy
    $dir = Join-Path $Chaos.Scratch 'store-down'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $db = Join-Path $dir 'app.db'
    $null = New-TestDatabase -Path $db -Rows 100
    $ledger = New-CommitLedger -InitialRows 100
    $bucket = New-ChaosBucket -Name 'down'
    $replica = [pscustomobject]@{ Kind = 's3'; Url = "s3://$bucket/app.db"; Endpoint = $s3.Moto.Endpoint }
    $meta = Join-Path $dir '.app.db-litestream'
    $replicator = Start-ChaosReplicator -Parameters @{ DatabasePath = $db; ReplicaUrl = $replica.Url; Endpoint = $proxy.Endpoint; SkipVerify = $true; SyncInterval = '1s'; MonitorInterval = '100ms' } -LogPath (Join-Path $dir 'replicator.log') | Register-ChaosChild
    $writerOut = Join-Path $dir 'writer.out'
    $writer = Start-Writer write --db $db --count 0 --interval-ms 10 --rows-per-tx 2 --blob-bytes 1000 -StdoutPath $writerOut | Register-ChaosChild
    $null = Wait-LogLine -Path $replicator.LogPath -Pattern 'wal segment written' -TimeoutSeconds 60 -Process $replicator

    $samples = [System.Collections.Generic.List[object]]::new()
    $sample = {
        param([string]$Phase, [double]$At)
        $status = @(Get-SqliteReplicationStatus -DatabasePath $db -ErrorAction SilentlyContinue)[0]
        $file = $null
        try { $file = [System.IO.File]::ReadAllText((Join-Path $meta 'sqlitereplica-status.json')) | ConvertFrom-Json } catch { }
        $shadow = 0L
        if (Test-Path -LiteralPath $meta) { $shadow = (@(Get-ChildItem -LiteralPath $meta -Recurse -File -Filter '*.wal') | Measure-Object -Property Length -Sum).Sum }
        $s = [pscustomobject][ordered]@{
            Phase               = $Phase
            AtSeconds           = [Math]::Round($At, 0)
            ShadowBytesOnDisk   = [long]$shadow
            Healthy             = if ($status) { $status.Healthy } else { $null }
            Reason              = if ($status) { Limit-Text $status.Reason 90 } else { 'no status' }
            BytesPending        = if ($status) { $status.BytesPending } else { $null }
            ConsecutiveFailures = if ($status) { $status.ConsecutiveFailures } else { $null }
            ShadowCapBytes      = if ($file -and $file.PSObject.Properties['shadowCapBytes']) { $file.shadowCapBytes } else { $null }
            ContinuityGivenUpAt = if ($file -and $file.PSObject.Properties['continuityGivenUpAt']) { $file.continuityGivenUpAt } else { $null }
            CommittedId         = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
            LastError           = if ($status -and $status.LastError) { Limit-Text $status.LastError 80 } else { '' }
        }
        $samples.Add($s)
        $s
    }

    $statusObject = $null
    try {
        Start-Sleep -Seconds 2
        $before = & $sample 'before' 0
        $statusObject = @(Get-SqliteReplicationStatus -DatabasePath $db)[0]
        $null = Set-S3Fault -Proxy $proxy -Kind down
        $outage = [System.Diagnostics.Stopwatch]::StartNew()
        $unhealthyAfter = $null
        $nextSample = $sampleSeconds
        $burst = $null
        while ($outage.Elapsed.TotalSeconds -lt $downSeconds) {
            if ($null -eq $burst -and $outage.Elapsed.TotalSeconds -ge $burstStart) {
                $burst = Invoke-CapBurst -Database $db -Meta $meta -Directory $dir -LimitSeconds $burstLimit -Replicator $replicator
                Write-ChaosLine 'StoreDown' ("burst: {0:N0} commits in {1:F1} s; shadow on disk up to {2:N0} bytes (cap {3:N0}); continuity given up: {4}" -f $burst.Commits, $burst.Seconds, $burst.PeakShadowBytes, $burst.CapBytes, $(if ($burst.GivenUpAt) { "after {0:F1} s" -f $burst.GivenUpAfter } else { 'no' }))
            }
            if ($null -eq $unhealthyAfter) {
                $st = @(Get-SqliteReplicationStatus -DatabasePath $db -ErrorAction SilentlyContinue)[0]
                if ($st -and -not $st.Healthy) { $unhealthyAfter = $outage.Elapsed.TotalSeconds }
            }
            if ($outage.Elapsed.TotalSeconds -ge $nextSample) {
                $s = & $sample 'down' $outage.Elapsed.TotalSeconds
                Write-ChaosLine 'StoreDown' ("down {0,4:F0} s: shadow {1:N0} bytes, healthy {2}, pending {3:N0}, failures {4}: {5}" -f $s.AtSeconds, $s.ShadowBytesOnDisk, $s.Healthy, $s.BytesPending, $s.ConsecutiveFailures, $s.Reason)
                $nextSample += $sampleSeconds
            }
            if ($replicator.HasExited) { throw "The replicator exited during the outage (code $($replicator.ExitCode)): $(Get-LogTail -Path $replicator.LogPath -Lines 6)" }
            Start-Sleep -Milliseconds 250
        }
        $peak = & $sample 'down (end)' $outage.Elapsed.TotalSeconds
        $statusDown = @(Get-SqliteReplicationStatus -DatabasePath $db)[0]

        Clear-S3Fault -Proxy $proxy
        $up = [System.Diagnostics.Stopwatch]::StartNew()
        $cUp = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
        $healthyAfter = $null
        $caughtAfter = $null
        $limit = if ($Chaos.Quick) { 90 } else { 300 }
        while ($up.Elapsed.TotalSeconds -lt $limit -and ($null -eq $healthyAfter -or $null -eq $caughtAfter)) {
            if ($null -eq $healthyAfter) {
                $st = @(Get-SqliteReplicationStatus -DatabasePath $db -ErrorAction SilentlyContinue)[0]
                if ($st -and $st.Healthy) { $healthyAfter = $up.Elapsed.TotalSeconds }
            }
            if ($null -eq $caughtAfter) {
                $at = $up.Elapsed.TotalSeconds
                $r = Invoke-ChaosRestore -Replica $replica -Parent $dir
                if ($r.Ok -and $r.Dump.maxId -ge $cUp) {
                    $caughtAfter = $at
                    $null = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
                    $judged = Test-CommittedPrefix -Dump $r.Dump -Ledger $ledger -UnreportedRows 2
                    if (-not $judged.Consistent) { $Result.Findings.Add((New-ChaosFinding -Campaign 'StoreDown' -Title 'Inconsistent restore after the outage' -Evidence ($judged.Problems -join '; '))) }
                }
                Remove-RestoreTarget $r
            }
            Start-Sleep -Milliseconds 500
        }
        $after = & $sample 'after recovery' $up.Elapsed.TotalSeconds
        Start-Sleep -Seconds 3

        $null = $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30
        $lastId = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
        $code = $replicator | Stop-ChaosReplicator
        $live = Get-DbDump -Path $db
        $final = Invoke-ChaosRestore -Replica $replica -Parent $dir
        $equal = $final.Ok -and $final.Dump.digest -eq $live.digest -and $live.maxId -eq $lastId
        $generations = @(Select-String -LiteralPath $replicator.LogPath -Pattern 'new generation .* started').Count

        $growth = $peak.ShadowBytesOnDisk - $before.ShadowBytesOnDisk
        $Result.Figures.Add((New-ChaosFigure -Name 'Shadow WAL on disk: before, at the end of the outage' -Value ("{0:N0} -> {1:N0} bytes" -f $before.ShadowBytesOnDisk, $peak.ShadowBytesOnDisk) -Note ("+{0:N0} bytes/s while {1} commits were made" -f ($growth / [Math]::Max(1, $downSeconds)), ($peak.CommittedId - $before.CommittedId))))
        $Result.Figures.Add((New-ChaosFigure -Name 'Shadow cap (status file)' -Value $(if ($null -ne $peak.ShadowCapBytes) { "{0:N0} bytes" -f $peak.ShadowCapBytes } else { 'not reported' }) -Note $(if ($statusObject -and $statusObject.PSObject.Properties['ShadowCapBytes']) { 'also on Get-SqliteReplicationStatus' } else { 'NOT a property of the Get-SqliteReplicationStatus output (only in the status file)' })))
        $Result.Figures.Add((New-ChaosFigure -Name 'Continuity given up when the burst took the shadow to its cap' -Value $(if ($burst -and $burst.GivenUpAt) { "after {0:F1} s of the burst" -f $burst.GivenUpAfter } else { "not within $burstLimit s" }) -Goal 'yes' -Met ($null -ne $burst -and $null -ne $burst.GivenUpAt) -Note $(if ($burst) { "{0:N0} commits in {1:F1} s; the shadow on disk up to {2:N0} bytes, {3:F2}x the cap of {4:N0} bytes (the cap is checked after each look's copy)" -f $burst.Commits, $burst.Seconds, $burst.PeakShadowBytes, ($burst.PeakShadowBytes / [Math]::Max(1, $burst.CapBytes)), $burst.CapBytes } else { 'the burst did not run' })))
        $Result.Figures.Add((New-ChaosFigure -Name 'Status unhealthy after the endpoint went down' -Value $(if ($null -ne $unhealthyAfter) { "{0:F1} s" -f $unhealthyAfter } else { 'never' }) -Goal '<= 10 s' -Met ($null -ne $unhealthyAfter -and $unhealthyAfter -le 10) -Note "at the end of the outage: $(if ($statusDown) { "Healthy=$($statusDown.Healthy), $($statusDown.Reason); $($statusDown.ConsecutiveFailures) failures; last error: $(Limit-Text $statusDown.LastError 120)" })"))
        $Result.Figures.Add((New-ChaosFigure -Name 'Status healthy again after the endpoint came back' -Value $(if ($null -ne $healthyAfter) { "{0:F1} s" -f $healthyAfter } else { "not within $limit s" }) -Goal "<= $limit s" -Met ($null -ne $healthyAfter)))
        $Result.Figures.Add((New-ChaosFigure -Name 'Replica holds every commit reported when the endpoint came back' -Value $(if ($null -ne $caughtAfter) { "after {0:F1} s" -f $caughtAfter } else { "not within $limit s" }) -Goal "<= $limit s" -Met ($null -ne $caughtAfter) -Note "$cUp commits; the backlog was $("{0:N0}" -f $peak.BytesPending) bytes"))
        $Result.Figures.Add((New-ChaosFigure -Name 'Nothing committed lost (final restore equals the live database)' -Value $(if ($equal) { 'yes' } else { 'no' }) -Goal 'yes' -Met $equal -Note "replicator exit $code; writer last commit $lastId; restored $(if ($final.Ok) { "$($final.Result.Position), max id $($final.Dump.maxId)" } else { $final.ErrorId }); new generations in the run: $generations"))
        if (-not $equal) { $Result.Findings.Add((New-ChaosFinding -Campaign 'StoreDown' -Title 'Commits lost after a long outage' -Evidence "writer last commit $lastId, live $($live.maxId), restore $(if ($final.Ok) { "$($final.Result.Position) max id $($final.Dump.maxId)" } else { "$($final.ErrorId) $($final.Message)" })")) }
        if ($null -eq $unhealthyAfter) { $Result.Findings.Add((New-ChaosFinding -Campaign 'StoreDown' -Title 'Status stayed healthy while the store was down' -Evidence (($samples | ForEach-Object { "$($_.Phase) $($_.AtSeconds)s healthy=$($_.Healthy) $($_.Reason)" }) -join '; '))) }
        Remove-RestoreTarget $final
    }
    finally {
        Clear-S3Fault -Proxy $proxy
        $Result.RowColumns = @('Phase', 'AtSeconds', 'ShadowBytesOnDisk', 'Healthy', 'Reason', 'BytesPending', 'ConsecutiveFailures', 'ShadowCapBytes', 'CommittedId', 'LastError')
        foreach ($s in $samples) { $Result.Rows.Add($s) }
    }
}

function Invoke-CapBurst {
    <#
    .SYNOPSIS
        A second writer at full speed (table 'burst', synchronous=NORMAL) until the status file
        says continuity was given up or -LimitSeconds pass; samples the shadow on disk every
        250 ms. Returns Commits, Seconds, PeakShadowBytes, CapBytes (the status file's, at the
        end), GivenUpAt and GivenUpAfter.
    #>
    param(
        [Parameter(Mandatory)][string]$Database,
        [Parameter(Mandatory)][string]$Meta,
        [Parameter(Mandatory)][string]$Directory,
        [Parameter(Mandatory)][double]$LimitSeconds,
        [Parameter(Mandatory)]$Replicator
    )
    $statusPath = Join-Path $Meta 'sqlitereplica-status.json'
    $readStatus = { try { [System.IO.File]::ReadAllText($statusPath) | ConvertFrom-Json } catch { $null } }
    # The status file leaves out properties that are null (no give-up yet).
    $givenUpIn = { param($st) if ($st -and $st.PSObject.Properties['continuityGivenUpAt']) { [string]$st.continuityGivenUpAt } else { $null } }
    $givenUpBefore = & $givenUpIn (& $readStatus)
    $out = Join-Path $Directory 'burst-writer.out'
    $w = Start-Writer write --db $Database --count 0 --blob-bytes 1000 --synchronous normal --table burst -StdoutPath $out | Register-ChaosChild
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    $peak = 0L; $givenUpAt = $null; $givenUpAfter = $null; $cap = 0L
    try {
        while ($clock.Elapsed.TotalSeconds -lt $LimitSeconds) {
            # A generation's directory can go while it is listed: a sample then counts what was seen.
            $bytes = 0L
            foreach ($f in @(Get-ChildItem -LiteralPath $Meta -Recurse -File -Filter '*.wal' -ErrorAction SilentlyContinue)) { $bytes += $f.Length }
            if ($bytes -gt $peak) { $peak = $bytes }
            $st = & $readStatus
            if ($st) {
                $cap = [long]$st.shadowCapBytes
                $now = & $givenUpIn $st
                if ($now -and $now -ne $givenUpBefore) {
                    $givenUpAt = $now
                    $givenUpAfter = $clock.Elapsed.TotalSeconds
                    break
                }
            }
            if ($w.HasExited) { throw "The burst writer exited (code $($w.ExitCode)): $(Get-LogTail -Path "$out.err" -Lines 4)" }
            if ($Replicator.HasExited) { throw "The replicator exited during the burst (code $($Replicator.ExitCode)): $(Get-LogTail -Path $Replicator.LogPath -Lines 6)" }
            Start-Sleep -Milliseconds 250
        }
    }
    finally {
        $null = $w | Stop-TestProcess -Signal TERM -TimeoutSeconds 30
    }
    $commits = @(Get-Content -LiteralPath $out -ErrorAction SilentlyContinue | Where-Object { $_ -like 'committed *' }).Count
    [pscustomobject]@{ Commits = $commits; Seconds = $clock.Elapsed.TotalSeconds; PeakShadowBytes = $peak; CapBytes = $cap; GivenUpAt = $givenUpAt; GivenUpAfter = $givenUpAfter }
}
