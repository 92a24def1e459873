# Campaign b: the application killed with SIGKILL in the middle of big transactions (their pages
# spill into the WAL before COMMIT) and in the middle of its own checkpoints, while the replicator
# runs. The replica must never hold an uncommitted transaction: right after the kill a restore is a
# committed prefix no longer than the live database's committed state, and once the replicator
# has caught up (after one more committed marker row) the restore equals the live database.

function Invoke-WriterCrashCampaign {
    param([Parameter(Mandatory)]$Result)
    $Result.Title = 'b. Application crash: kill -9 of the writer mid-transaction and mid-checkpoint'
    $Result.Description = (
        'One replicator (file replica, sync 200 ms, its own checkpoints only past 20000 pages) runs throughout. Big-transaction trials run the writer''s `bigtx` (one transaction of ' +
        '20000-40000 pages; anything above the page cache spills uncommitted frames into the WAL) and SIGKILL it 10-80 % into its ' +
        'calibrated duration. Checkpoint trials run `write` with its own `wal_checkpoint(PASSIVE|RESTART|TRUNCATE)` after every 2 ' +
        'transactions (autocheckpoint off) and SIGKILL it at a random moment; commit trials run `write` with 20-row transactions back to back and SIGKILL it at a random moment; a kill after the last reported COMMIT of a checkpointing ' +
        'transaction landed inside the checkpoint. One second after each kill the replica is restored (it must be a committed prefix, ' +
        'no longer than what the live database committed); then a marker row is committed and, once the replica holds it, the restore ' +
        'must equal the live database exactly.')
    $random = Get-ChaosRandom 'WriterCrash'
    $modeShift = $random.Next(0, 3)
    $bigTrials = if ($Chaos.Quick) { 1 } else { 30 }
    $commitTrials = if ($Chaos.Quick) { 3 } else { 30 }
    $checkpointTrials = if ($Chaos.Quick) { 2 } else { 30 }
    $catchUpSeconds = if ($Chaos.Quick) { 10 } else { 30 }
    $minPages = 20000
    $maxPages = 40000

    $dir = Join-Path $Chaos.Scratch 'writer-crash'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $db = Join-Path $dir 'app.db'
    $null = New-TestDatabase -Path $db -Rows 100
    $ledger = New-CommitLedger -InitialRows 100
    $replica = [pscustomobject]@{ Kind = 'file'; Path = Join-Path $dir 'replica' }
    # The replicator's own checkpoints only past 20000 pages: the application's WAL grows long, as
    # with a busy application, and its COMMITs (fsync of a long WAL) take long enough to be hit.
    $replicator = Start-ChaosReplicator -Parameters @{ DatabasePath = $db; ReplicaPath = $replica.Path; MonitorInterval = '100ms'; SyncInterval = '200ms'; MinCheckpointPageCount = 20000; MaxCheckpointPageCount = 0 } -LogPath (Join-Path $dir 'replicator.log') | Register-ChaosChild
    $trials = [System.Collections.Generic.List[object]]::new()
    try {
        # Calibration: process start-up and ms per page of a big transaction here.
        $calibrationOut = Join-Path $dir 'calibration.out'
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $lines = @(Invoke-Writer bigtx --db $db --pages 1)
        $startupMs = $watch.Elapsed.TotalMilliseconds
        $watch.Restart()
        $lines += @(Invoke-Writer bigtx --db $db --pages 20000)
        $bigMs = $watch.Elapsed.TotalMilliseconds
        [System.IO.File]::WriteAllLines($calibrationOut, [string[]]$lines)
        $null = Update-CommitLedger -Ledger $ledger -StdoutPath $calibrationOut
        $msPerPage = [Math]::Max(0.02, ($bigMs - $startupMs) / 20000)
        $Result.Notes.Add(("calibration: writer start-up {0:F0} ms, a 20000-page transaction {1:F0} ms" -f $startupMs, $bigMs))

        $plan = @(foreach ($i in 1..$bigTrials) { 'bigtx' }) + @(foreach ($i in 1..$commitTrials) { 'commit' }) + @(foreach ($i in 1..$checkpointTrials) { @('passive', 'restart', 'truncate')[($i - 1 + $modeShift) % 3] })
        $number = 0
        foreach ($kind in $plan) {
            $number++
            if ($replicator.HasExited) { throw "The replicator exited (code $($replicator.ExitCode)): $(Get-LogTail -Path $replicator.LogPath -Lines 10)" }
            $out = Join-Path $dir ("writer-{0:d3}.out" -f $number)
            $before = (Get-DbDump -Path $db).maxId
            $trial = [pscustomobject][ordered]@{
                Number = $number; Kind = $kind; Pages = $null; DelayMs = 0; Landed = ''; LiveMaxId = $null; RestoredMaxId = $null
                AfterKill = ''; CaughtUpSeconds = $null; Equal = $false; Consistent = $true; Problems = @()
            }
            if ($kind -eq 'bigtx') {
                $pages = $random.Next($minPages, $maxPages + 1)
                $trial.Pages = $pages
                $unreported = [long]$pages
                # Between 10 % and 80 % of the expected duration: inside the transaction (commit trials cover COMMIT itself).
                $delay = [int]($startupMs + (0.1 + 0.7 * $random.NextDouble()) * $pages * $msPerPage)
                $writer = Start-Writer bigtx --db $db --pages $pages -StdoutPath $out | Register-ChaosChild
            }
            elseif ($kind -eq 'commit') {
                # Small transactions back to back (autocheckpoint off): the kill lands in a COMMIT often.
                $unreported = 20L
                $delay = $random.Next(300, 1500)
                $writer = Start-Writer write --db $db --count 0 --rows-per-tx 20 --blob-bytes 3000 --autocheckpoint 0 -StdoutPath $out | Register-ChaosChild
            }
            else {
                $unreported = 20L
                $delay = $random.Next(300, 2500)
                $writer = Start-Writer write --db $db --count 0 --rows-per-tx 20 --blob-bytes 3000 --autocheckpoint 0 --checkpoint-every 2 --checkpoint-mode $kind -StdoutPath $out | Register-ChaosChild
            }
            $trial.DelayMs = $delay
            $walBefore = [System.IO.File]::GetLastWriteTimeUtc("$db-wal")
            Start-Sleep -Milliseconds $delay
            $exited = $writer.HasExited
            $null = $writer | Stop-ChaosProcessKill
            $null = Update-CommitLedger -Ledger $ledger -StdoutPath $out
            $stdout = @((Read-ChaosText -Path $out) -split "`r?`n" | Where-Object { $_ })
            if ($kind -eq 'bigtx') {
                $walWritten = [System.IO.File]::GetLastWriteTimeUtc("$db-wal") -gt $walBefore
                $trial.Landed = if ($exited) { 'after it finished (committed)' } elseif ($stdout -match '^committed') { 'after COMMIT' } elseif ($walWritten) { 'inside the transaction, uncommitted frames in the WAL' } else { 'before the transaction wrote to the WAL' }
            }
            elseif ($kind -eq 'commit') {
                $trial.Landed = if ($stdout -match '^committed') { 'between commits' } else { 'before the first commit' }
            }
            else {
                $commits = @($stdout -match '^committed').Count
                $last = if ($stdout.Count -gt 0) { $stdout[-1] } else { '' }
                $trial.Landed = if ($last -like 'committed*' -and $commits % 2 -eq 0) { 'inside a checkpoint (or just before it)' } elseif ($last -like 'checkpoint*') { 'after a checkpoint' } else { 'inside a transaction' }
            }

            # Right after the kill: the WAL may end with uncommitted frames. Give the replicator a moment.
            Start-Sleep -Milliseconds 1000
            $live = Get-DbDump -Path $db
            $trial.LiveMaxId = $live.maxId
            $problems = [System.Collections.Generic.List[string]]::new()
            if ($live.integrity -ne 'ok') { $problems.Add("the live database itself fails integrity_check: $($live.integrity)") }
            $restore = Invoke-ChaosRestore -Replica $replica -Parent $dir
            if (-not $restore.Ok) {
                $problems.Add("restore after the kill failed: $($restore.ErrorId): $(Limit-Text $restore.Message)")
            }
            else {
                $judged = Test-CommittedPrefix -Dump $restore.Dump -Ledger $ledger -UnreportedRows $unreported -MaxCommittedId ([long]$live.maxId)
                $trial.AfterKill = "$($restore.Result.Position) (max id $($judged.MaxId))"
                foreach ($p in $judged.Problems) { $problems.Add("after the kill: $p") }
            }
            Remove-RestoreTarget $restore

            # A committed marker row, then the replica must catch up to exactly the live database.
            $markerOut = Join-Path $dir ("marker-{0:d3}.out" -f $number)
            $lines = Invoke-Writer write --db $db --count 1
            [System.IO.File]::WriteAllLines($markerOut, [string[]]$lines)
            $marker = Update-CommitLedger -Ledger $ledger -StdoutPath $markerOut
            $live = Get-DbDump -Path $db
            $caught = [System.Diagnostics.Stopwatch]::StartNew()
            $final = $null
            while ($caught.Elapsed.TotalSeconds -lt $catchUpSeconds) {
                $final = Invoke-ChaosRestore -Replica $replica -Parent $dir
                if ($final.Ok -and $final.Dump.digest -eq $live.digest) { break }
                Remove-RestoreTarget $final
                Start-Sleep -Milliseconds 250
            }
            if ($final -and $final.Ok) {
                $trial.RestoredMaxId = $final.Dump.maxId
                $trial.Equal = $final.Dump.digest -eq $live.digest
                if ($trial.Equal) { $trial.CaughtUpSeconds = [Math]::Round($caught.Elapsed.TotalSeconds, 1) }
                else {
                    $judged = Test-CommittedPrefix -Dump $final.Dump -Ledger $ledger -MaxCommittedId ([long]$live.maxId)
                    foreach ($p in $judged.Problems) { $problems.Add("$catchUpSeconds s after the marker: $p") }
                    $status = @(Get-SqliteReplicationStatus -DatabasePath $db -ErrorAction SilentlyContinue)[0]
                    $said = if ($status) { "status then: Healthy=$($status.Healthy) ($($status.Reason)), local $($status.LocalPosition), confirmed $($status.ConfirmedPosition)" } else { 'no status' }
                    $problems.Add("$catchUpSeconds s after the marker (id $marker) the newest restore ($($final.Result.Position), max id $($final.Dump.maxId)) still differs from the live database (max id $($live.maxId)); $said")
                }
            }
            else {
                $problems.Add("restore after the marker failed: $(if ($final) { "$($final.ErrorId): $(Limit-Text $final.Message)" })")
            }
            Remove-RestoreTarget $final
            $trial.Problems = @($problems)
            $trial.Consistent = $problems.Count -eq 0
            $trials.Add($trial)
            Write-ChaosLine 'WriterCrash' ("trial {0}/{1}: {2}{3}, killed after {4} ms, {5}; live max id {6} (was {7}); after the kill {8}; caught up in {9} s{10}" -f $number, $plan.Count, $kind, $(if ($trial.Pages) { " $($trial.Pages) pages" }), $delay, $trial.Landed, $trial.LiveMaxId, $before, $trial.AfterKill, $trial.CaughtUpSeconds, $(if ($trial.Consistent) { '' } else { ' PROBLEM: ' + ($problems -join '; ') }))
        }
        $code = $replicator | Stop-ChaosReplicator
        $Result.Notes.Add("replicator exit code after SIGTERM: $code")
        if ($code -ne 0) { $Result.Findings.Add((New-ChaosFinding -Campaign 'WriterCrash' -Title 'The replicator did not exit 0 after SIGTERM' -Evidence (Get-LogTail -Path $replicator.LogPath -Lines 8))) }
    }
    finally {
        $bad = @($trials | Where-Object { -not $_.Consistent })
        $big = @($trials | Where-Object Kind -eq 'bigtx')
        $cp = @($trials | Where-Object Kind -in 'passive', 'restart', 'truncate')
        $small = @($trials | Where-Object Kind -eq 'commit')
        $Result.Figures.Add((New-ChaosFigure -Name 'Kills mid big transaction (pages spilled into the WAL before COMMIT)' -Value $big.Count -Note (($big | Group-Object Landed | ForEach-Object { "$($_.Count) $($_.Name)" }) -join ', ')))
        $Result.Figures.Add((New-ChaosFigure -Name 'Kills of a writer committing small transactions back to back' -Value $small.Count))
        $Result.Figures.Add((New-ChaosFigure -Name 'Kills of a writer doing its own checkpoints' -Value $cp.Count -Note (($cp | Group-Object Landed | ForEach-Object { "$($_.Count) $($_.Name)" }) -join ', ')))
        $ahead = @($trials | Where-Object { @($_.Problems -match 'past the live database').Count -gt 0 })
        $Result.Figures.Add((New-ChaosFigure -Name 'Restores holding an uncommitted or partial transaction, not a prefix, or failing' -Value $bad.Count -Goal '0' -Met ($bad.Count -eq 0)))
        $Result.Figures.Add((New-ChaosFigure -Name '... of which the replica held a transaction the live database does not have' -Value $ahead.Count -Goal '0' -Met ($ahead.Count -eq 0)))
        $equal = @($trials | Where-Object Equal).Count
        $Result.Figures.Add((New-ChaosFigure -Name 'Replica equal to the live database after catching up' -Value ("{0} of {1}" -f $equal, $trials.Count) -Goal 'all' -Met ($equal -eq $trials.Count -and $trials.Count -gt 0)))
        $caughtTimes = @($trials | Where-Object { $null -ne $_.CaughtUpSeconds } | ForEach-Object CaughtUpSeconds)
        if ($caughtTimes.Count -gt 0) {
            $Result.Figures.Add((New-ChaosFigure -Name 'Time for the replica to hold the marker row (max)' -Value ("{0:F1} s" -f ($caughtTimes | Measure-Object -Maximum).Maximum) -Note 'polled with a restore every 0.25 s'))
        }
        foreach ($t in $bad) {
            $Result.Findings.Add((New-ChaosFinding -Campaign 'WriterCrash' -Title "Writer crash trial $($t.Number) ($($t.Kind)): replica not a committed prefix" -Evidence (($t.Problems -join '; ') + " (killed after $($t.DelayMs) ms, $($t.Landed))")))
        }
        $Result.RowColumns = @('Number', 'Kind', 'Pages', 'DelayMs', 'Landed', 'LiveMaxId', 'AfterKill', 'RestoredMaxId', 'CaughtUpSeconds', 'Equal')
        foreach ($t in $trials) { $Result.Rows.Add($t) }
    }
}
