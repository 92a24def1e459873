# Campaign c: S3 faults under continuous writes. One replicator replicates through the fault proxy
# (HTTPS, R2 rules) to moto while the writer commits; each phase injects one kind of fault, then
# measures how long the replica takes to hold every commit made before the fault ended (restores
# straight from moto, polled), whether any commit is lost, and how many requests the proxy saw per
# successful upload.

function Invoke-NetworkCampaign {
    param([Parameter(Mandatory)]$Result)
    $quick = $Chaos.Quick
    $stallSeconds = if ($quick) { 5 } else { 35 }
    $stallCount = if ($quick) { 1 } else { 2 }
    $downSeconds = if ($quick) { 8 } else { 90 }
    $catchUpLimit = if ($quick) { 60 } else { 180 }
    $Result.Title = 'c. Network faults on S3 (moto behind the fault proxy)'
    $Result.Description = (
        'The replicator (sync 200 ms) uploads through the HTTPS fault proxy to moto while the writer commits 2 rows every 10 ms. ' +
        'Each phase resets the proxy counters, injects its fault, waits until every injected fault was served, then polls a restore ' +
        '(straight from moto, so polling adds no proxied request) until it holds every commit the writer had reported when the fault ' +
        'ended. Catch-up is that time; commits lost are the reported commits still missing after ' + $catchUpLimit + ' s; amplification ' +
        'is all proxied requests of the phase divided by the successful object uploads (PutObject, CompleteMultipartUpload). ' +
        $(if ($quick) { "Quick mode stalls a request $stallSeconds s, less than the client's 30 s request timeout (Long mode: 35 s, beyond it), and keeps the endpoint down $downSeconds s (Long mode: 90 s); the 429 phase runs in Long mode only." } else { "Stalls last $stallSeconds s, beyond the client's 30 s request timeout; the endpoint stays down $downSeconds s." }))

    $s3 = Get-ChaosS3
    $proxy = $s3.Proxy
    $dir = Join-Path $Chaos.Scratch 'network'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $db = Join-Path $dir 'app.db'
    $null = New-TestDatabase -Path $db -Rows 100
    $ledger = New-CommitLedger -InitialRows 100
    $bucket = New-ChaosBucket -Name 'net'
    $replica = [pscustomobject]@{ Kind = 's3'; Url = "s3://$bucket/app.db"; Endpoint = $s3.Moto.Endpoint }
    $parameters = @{ DatabasePath = $db; ReplicaUrl = $replica.Url; Endpoint = $proxy.Endpoint; SkipVerify = $true; SyncInterval = '200ms'; MonitorInterval = '100ms' }
    $script:NetworkLogIndex = 0
    $startReplicator = {
        $script:NetworkLogIndex++
        Start-ChaosReplicator -Parameters $parameters -LogPath (Join-Path $dir ("replicator-{0}.log" -f $script:NetworkLogIndex)) -DebugOutput | Register-ChaosChild
    }
    $replicator = & $startReplicator
    $writerOut = Join-Path $dir 'writer.out'
    $writer = Start-Writer write --db $db --count 0 --interval-ms 10 --rows-per-tx 2 -StdoutPath $writerOut | Register-ChaosChild
    $null = $writer | Wait-WriterProgress -MinimumId 200 -TimeoutSeconds 60
    $null = Wait-LogLine -Path $replicator.LogPath -Pattern 'wal segment written' -TimeoutSeconds 60 -Process $replicator

    $phases = @(
        @{ Name = 'baseline (no fault)'; Kind = 'none'; Faults = @(); Expect = 0; Quiet = $(if ($quick) { 3 } else { 10 }) }
        @{ Name = '5xx burst (503 x3, 500 x2 on PutObject)'; Kind = 'status'; Faults = @(@{ Kind = 'status'; Status = 503; Count = 3; Match = 'PutObject' }, @{ Kind = 'status'; Status = 500; Code = 'InternalError'; Count = 2; Match = 'PutObject' }); Expect = 5 }
        @{ Name = 'SlowDown (503 SlowDown x4 on PUT)'; Kind = 'status'; Faults = @(@{ Kind = 'status'; Status = 503; Code = 'SlowDown'; Message = 'Please reduce your request rate.'; Count = 4; Match = 'PUT' }); Expect = 4 }
        @{ Name = 'connection resets x5'; Kind = 'reset'; Faults = @(@{ Kind = 'reset'; Count = 5 }); Expect = 5 }
        @{ Name = "stalls of $stallSeconds s x$stallCount on PutObject$(if ($quick) { ' (under the 30 s timeout)' } else { ' (beyond the 30 s timeout)' })"; Kind = 'stall'; Faults = @(@{ Kind = 'stall'; Seconds = $stallSeconds; Count = $stallCount; Match = 'PutObject' }); Expect = $stallCount; Hold = $stallSeconds }
        @{ Name = 'bodies cut short (GET truncated x2 during a restore through the proxy, x2 during a replicator restart)'; Kind = 'truncate'; Faults = @(); Expect = 4 }
        @{ Name = "endpoint down $downSeconds s (connections refused)"; Kind = 'down'; Faults = @(@{ Kind = 'down'; Seconds = $downSeconds }); Expect = 1; Hold = $downSeconds }
    )

    if (-not $quick) {
        $phases = @($phases[0..2]) + @(@{ Name = '429 TooManyRequests x3'; Kind = 'status'; Faults = @(@{ Kind = 'status'; Status = 429; Code = 'TooManyRequests'; Count = 3 }); Expect = 3 }) + @($phases[3..($phases.Count - 1)])
    }
    $rows = [System.Collections.Generic.List[object]]::new()
    try {
        foreach ($phase in $phases) {
            if ($writer.HasExited) { throw "The writer exited (code $($writer.ExitCode))." }
            Reset-S3Counters -Proxy $proxy
            $row = [pscustomobject][ordered]@{
                Phase = $phase.Name; FaultsInjected = 0; CommitsAtFaultEnd = $null; CatchUpSeconds = $null; CommitsLost = $null
                Requests = 0; SuccessfulUploads = 0; Amplification = $null; Errors = 0; Note = ''
            }
            $phaseWatch = [System.Diagnostics.Stopwatch]::StartNew()
            $restoreFaults = 0L
            $logOffset = (Read-ChaosText -Path $replicator.LogPath).Length

            if ($phase.Kind -eq 'truncate') {
                # A restore through the proxy while GET bodies are cut, then a replicator restart (its resume reads objects back).
                $null = Set-S3Fault -Proxy $proxy -Kind truncate -Count 2 -Match GetObject
                $viaProxy = Invoke-ChaosRestore -Replica ([pscustomobject]@{ Kind = 's3'; Url = $replica.Url; Endpoint = $proxy.Endpoint }) -Parent $dir
                $null = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
                if ($viaProxy.Ok) {
                    $judged = Test-CommittedPrefix -Dump $viaProxy.Dump -Ledger $ledger -UnreportedRows 2
                    $row.Note = "restore through the proxy: ok ($($viaProxy.Result.Position), $(if ($judged.Consistent) { 'a committed prefix' } else { 'INCONSISTENT: ' + ($judged.Problems -join '; ') }))"
                    if (-not $judged.Consistent) { $Result.Findings.Add((New-ChaosFinding -Campaign 'Network' -Title 'A restore through cut GET bodies produced an inconsistent database' -Evidence ($judged.Problems -join '; '))) }
                }
                else {
                    $row.Note = "restore through the proxy failed: $($viaProxy.ErrorId)"
                    if ($viaProxy.ErrorId -notmatch '^(StoreUnreachable|SegmentCorrupt)') {
                        $Result.Findings.Add((New-ChaosFinding -Campaign 'Network' -Title 'A restore through cut GET bodies failed with an unclear error' -Evidence "$($viaProxy.ErrorId): $($viaProxy.Message)"))
                    }
                }
                Remove-RestoreTarget $viaProxy
                Clear-S3Fault -Proxy $proxy
                # The restore's own requests are not the replicator's: the counters start again for the restart.
                $before = Get-S3Counters -Proxy $proxy -Reset
                $restoreFaults = [long]$before.faults.injected
                $row.Note += " ($($before.total) requests, not counted below)"
                $code = $replicator | Stop-ChaosReplicator
                $null = Set-S3Fault -Proxy $proxy -Kind truncate -Count 2 -Match GetObject
                $replicator = & $startReplicator
                $logOffset = 0
                $null = Wait-LogLine -Path $replicator.LogPath -Pattern '(wal segment written|snapshot written)' -TimeoutSeconds 60 -Process $replicator
                $row.Note += "; replicator restarted (previous exit $code), $(if (Select-String -LiteralPath $replicator.LogPath -Pattern 'resuming at' -Quiet) { 'resumed its generation' } else { 'did not resume: ' + (Limit-Text ((Get-ChaosLogLine -LogPath $replicator.LogPath | Where-Object { $_.Kind -eq 'WARNING' -or $_.Text -match 'new generation' } | Select-Object -First 2 | ForEach-Object Text) -join ' / ') 200) })"
            }
            else {
                foreach ($f in $phase.Faults) {
                    $arguments = @{ Proxy = $proxy }
                    foreach ($k in $f.Keys) { $arguments[$k] = $f[$k] }
                    $null = Set-S3Fault @arguments
                }
                if ($phase.Expect -gt 0) {
                    $served = Wait-FaultCount -Proxy $proxy -Count $phase.Expect -TimeoutSeconds 60
                    if (-not $served) { $row.Note = "only $((Get-S3Counters -Proxy $proxy).faults.injected) of $($phase.Expect) faults were served in 60 s" }
                }
                if ($phase.ContainsKey('Hold')) { Start-Sleep -Seconds $phase.Hold }
                if ($phase.ContainsKey('Quiet')) { Start-Sleep -Seconds $phase.Quiet }
            }
            Clear-S3Fault -Proxy $proxy
            $faultEnd = [System.Diagnostics.Stopwatch]::StartNew()
            $cEnd = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
            $row.CommitsAtFaultEnd = $cEnd
            $caught = $null
            $last = $null
            while ($faultEnd.Elapsed.TotalSeconds -lt $catchUpLimit) {
                $at = $faultEnd.Elapsed.TotalSeconds
                $last = Invoke-ChaosRestore -Replica $replica -Parent $dir
                $done = $last.Ok -and $last.Dump.maxId -ge $cEnd
                if ($done) { $caught = $at; break }
                Remove-RestoreTarget $last
                Start-Sleep -Milliseconds 300
            }
            $null = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
            if ($null -ne $caught) {
                $row.CatchUpSeconds = [Math]::Round($caught, 1)
                $row.CommitsLost = 0
                $judged = Test-CommittedPrefix -Dump $last.Dump -Ledger $ledger -UnreportedRows 2
                if (-not $judged.Consistent) {
                    $row.CommitsLost = -1
                    $row.Note = (($row.Note, ('INCONSISTENT restore: ' + ($judged.Problems -join '; '))) | Where-Object { $_ }) -join '; '
                    $Result.Findings.Add((New-ChaosFinding -Campaign 'Network' -Title "Inconsistent restore after '$($phase.Name)'" -Evidence ($judged.Problems -join '; ')))
                }
            }
            else {
                $k = if ($last -and $last.Ok) { [long]$last.Dump.maxId } else { 0 }
                $row.CommitsLost = [Math]::Max(0, $cEnd - $k)
                $row.Note = (($row.Note, "not caught up after $catchUpLimit s: the replica holds id $k of $cEnd$(if ($last -and -not $last.Ok) { " (restore: $($last.ErrorId))" })") | Where-Object { $_ }) -join '; '
                $Result.Findings.Add((New-ChaosFinding -Campaign 'Network' -Title "Commits missing $catchUpLimit s after '$($phase.Name)' ended" -Evidence $row.Note))
            }
            Remove-RestoreTarget $last

            $counters = Get-S3Counters -Proxy $proxy
            $records = @(Get-S3ProxyRequest -Proxy $proxy)
            $row.FaultsInjected = [long]$counters.faults.injected + $restoreFaults
            $row.Requests = [long]$counters.total
            $row.SuccessfulUploads = @($records | Where-Object { $_.operation -in 'PutObject', 'CompleteMultipartUpload' -and $_.status -ge 200 -and $_.status -lt 300 -and $_.target -notlike '*sqlitereplica-lease*' }).Count
            $row.Amplification = if ($row.SuccessfulUploads -gt 0) { [Math]::Round($row.Requests / $row.SuccessfulUploads, 2) } else { $null }
            $row.Errors = @(Get-ChaosLogLine -LogPath $replicator.LogPath -Offset $logOffset | Where-Object { $_.Kind -eq 'ERRORID' }).Count
            if ($replicator.HasExited) {
                $row.Note = (($row.Note, "the replicator EXITED (code $($replicator.ExitCode))") | Where-Object { $_ }) -join '; '
                $Result.Findings.Add((New-ChaosFinding -Campaign 'Network' -Title "The replicator exited during '$($phase.Name)'" -Evidence (Get-LogTail -Path $replicator.LogPath -Lines 6)))
                $replicator = & $startReplicator
            }
            $rows.Add($row)
            Write-ChaosLine 'Network' ("{0}: {1} faults, caught up in {2} s, lost {3}, {4} requests / {5} uploads = {6} {7}" -f $row.Phase, $row.FaultsInjected, $row.CatchUpSeconds, $row.CommitsLost, $row.Requests, $row.SuccessfulUploads, $row.Amplification, $row.Note)
        }

        # The end: the writer stops, SIGTERM (final sync), the bucket must equal the live database.
        $null = $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30
        $lastId = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
        $code = $replicator | Stop-ChaosReplicator
        $live = Get-DbDump -Path $db
        $final = Invoke-ChaosRestore -Replica $replica -Parent $dir
        $equal = $final.Ok -and $final.Dump.digest -eq $live.digest -and $live.maxId -eq $lastId
        $Result.Figures.Add((New-ChaosFigure -Name 'Final restore after SIGTERM equals the live database (every commit kept)' -Value $(if ($equal) { 'yes' } else { 'no' }) -Goal 'yes' -Met $equal -Note "replicator exit $code; writer last commit $lastId; restored $(if ($final.Ok) { "$($final.Result.Position), max id $($final.Dump.maxId)" } else { $final.ErrorId })"))
        if (-not $equal) { $Result.Findings.Add((New-ChaosFinding -Campaign 'Network' -Title 'After the fault phases the bucket does not equal the live database' -Evidence "writer last commit $lastId, live max id $($live.maxId), restore: $(if ($final.Ok) { "$($final.Result.Position) max id $($final.Dump.maxId)" } else { "$($final.ErrorId) $($final.Message)" })")) }
        Remove-RestoreTarget $final
    }
    finally {
        $faultRows = @($rows | Where-Object { $_.Phase -notlike 'baseline*' })
        $lost = @($rows | Where-Object { $_.CommitsLost -ne 0 })
        $Result.Figures.Insert(0, (New-ChaosFigure -Name 'Fault phases run' -Value $faultRows.Count -Note ((($faultRows | ForEach-Object { $_.FaultsInjected }) -join '+') + ' faults served')))
        $Result.Figures.Insert(1, (New-ChaosFigure -Name 'Commits lost (phases not caught up, or inconsistent)' -Value (@($rows | Where-Object { $_.CommitsLost -gt 0 } | ForEach-Object CommitsLost) | Measure-Object -Sum).Sum -Goal '0' -Met ($lost.Count -eq 0)))
        $worst = @($rows | Where-Object { $null -ne $_.CatchUpSeconds } | Sort-Object CatchUpSeconds -Descending | Select-Object -First 1)
        if ($worst.Count -gt 0) { $Result.Figures.Insert(2, (New-ChaosFigure -Name 'Longest catch-up after a fault ended' -Value ("{0:F1} s" -f $worst[0].CatchUpSeconds) -Note $worst[0].Phase)) }
        $baseline = @($rows | Where-Object { $_.Phase -like 'baseline*' -and $null -ne $_.Amplification })
        $maxAmp = @($faultRows | Where-Object { $null -ne $_.Amplification } | Sort-Object Amplification -Descending | Select-Object -First 1)
        if ($maxAmp.Count -gt 0) { $Result.Figures.Add((New-ChaosFigure -Name 'Highest request amplification (requests per successful upload)' -Value $maxAmp[0].Amplification -Note "$($maxAmp[0].Phase); baseline $(if ($baseline.Count) { $baseline[0].Amplification } else { 'n/a' })")) }
        $Result.RowColumns = @('Phase', 'FaultsInjected', 'CommitsAtFaultEnd', 'CatchUpSeconds', 'CommitsLost', 'Requests', 'SuccessfulUploads', 'Amplification', 'Errors', 'Note')
        foreach ($r in $rows) { $Result.Rows.Add($r) }
    }
}

function Wait-FaultCount {
    # $true once the proxy has served -Count faults since the last counter reset.
    param([Parameter(Mandatory)]$Proxy, [Parameter(Mandatory)][int]$Count, [double]$TimeoutSeconds = 60)
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    while ($watch.Elapsed.TotalSeconds -lt $TimeoutSeconds) {
        if ((Get-S3Counters -Proxy $Proxy).faults.injected -ge $Count) { return $true }
        Start-Sleep -Milliseconds 200
    }
    $false
}
