# Campaign a: the replicator killed with SIGKILL (its whole process group) at random moments under
# continuous writes, and at each named crash point, then restarted; after every trial the replica
# is restored and judged: intact, exactly the ids 1..k of whole committed transactions, and holding
# every position a replicator had logged as confirmed (store-acknowledged).

$script:CrashPoints = @('snapshot-upload', 'segment-upload', 'checkpoint', 'wal-index-change', 'generation-change', 'retention-delete')

function Invoke-CrashCampaign {
    param([Parameter(Mandatory)]$Result)
    $Result.Title = 'a. Replicator crash: kill -9 at random moments and at every crash point'
    $Result.Description = (
        'The application (the test writer) commits 3 rows per transaction every 5 ms the whole time. Each trial starts the replicator ' +
        '(MinCheckpointPageCount 200, so WAL restarts are frequent), then either kills its process group with SIGKILL after a random ' +
        'delay (0.2-6 s from process start, so some kills land during start-up), or sets SQLITEREPLICA_CRASH_AT to a crash point and ' +
        'waits for the replicator to kill itself there (the CRASHPOINT line in its log is required). After each trial: a restore of ' +
        'the newest state must pass integrity_check and hold exactly ids 1..k ending on a committed transaction; the newest confirmed ' +
        'position of every generation must still restore exactly (Test-ReplicaRestore -Generation -Index -Offset) and its rows must be in ' +
        'the newest restore. At the end the writer stops, a last replicator catches up and ends with SIGTERM, and the restore must equal ' +
        'the live database. Two series: a file replica, and an S3 replica through the proxy.')
    $random = Get-ChaosRandom 'Crash'
    if ($Chaos.Quick) {
        $fileTrials = @(@('random') * 3) + $script:CrashPoints
        $s3Trials = @('random', 'segment-upload')
    }
    else {
        $fileTrials = @(@('random') * 150) + @(foreach ($i in 1..6) { $script:CrashPoints })
        $s3Trials = @(@('random') * 20) + @(foreach ($i in 1..2) { $script:CrashPoints })
    }

    $series = [System.Collections.Generic.List[object]]::new()
    try {
        foreach ($plan in @(@{ Name = 'file'; Kinds = $fileTrials }, @{ Name = 's3'; Kinds = $s3Trials })) {
            $state = New-CrashSeriesState -Name $plan.Name
            $series.Add($state)
            Invoke-CrashSeries -State $state -Kinds (Get-Shuffled $plan.Kinds $random) -Random $random
        }
    }
    finally {
        Add-CrashFigures -Result $Result -Series $series
    }
}

function New-CrashSeriesState {
    param([Parameter(Mandatory)][string]$Name)
    [pscustomobject]@{
        Name              = $Name
        Trials            = [System.Collections.Generic.List[object]]::new()
        ConfirmedCount    = 0
        PositionChecks    = 0
        MissingPositions  = [System.Collections.Generic.List[object]]::new()
        ForcedGenerations = [System.Collections.Generic.List[object]]::new()
        FinalEqual        = $false
        FinalDetail       = 'not reached'
    }
}

function Add-CrashFigures {
    param([Parameter(Mandatory)]$Result, [Parameter(Mandatory)][AllowEmptyCollection()]$Series)
    $result = $Result
    $series = $Series
    $trials = @($series | ForEach-Object { $_.Trials })
    $inconsistent = @($trials | Where-Object { -not $_.Consistent })
    $missing = @($series | ForEach-Object { $_.MissingPositions }).Count
    $pointTrials = @($trials | Where-Object Kind -ne 'random')
    $pointsReached = @($pointTrials | Where-Object { $_.EvidenceLine })
    $forced = @($series | ForEach-Object { $_.ForcedGenerations })
    $reasons = ($forced | Group-Object Reason | Sort-Object Count -Descending | ForEach-Object { "$($_.Count)x $($_.Name)" }) -join '; '
    $finalOk = @($series | Where-Object { -not $_.FinalEqual })

    $result.Figures.Add((New-ChaosFigure -Name 'Trials (kill + restart + restore check)' -Value $trials.Count -Goal $(if ($Chaos.Quick) { 'report (Long: >= 200)' } else { '>= 200' }) -Met $(if ($Chaos.Quick) { $null } else { $trials.Count -ge 200 })))
    $result.Figures.Add((New-ChaosFigure -Name 'Random SIGKILLs of the process group' -Value @($trials | Where-Object Kind -eq 'random').Count -Note (Format-KillPhases $trials)))
    $result.Figures.Add((New-ChaosFigure -Name 'Crash-point trials with the CRASHPOINT log line and exit 137' -Value ("{0} of {1}" -f @($pointsReached | Where-Object { $_.ExitCode -eq 137 }).Count, $pointTrials.Count) -Goal 'all' -Met (@($pointsReached | Where-Object { $_.ExitCode -eq 137 }).Count -eq $pointTrials.Count) -Note (($pointTrials | Group-Object Kind | ForEach-Object { "$($_.Name) $(@($_.Group | Where-Object EvidenceLine).Count)/$($_.Count)" }) -join ', ')))
    $result.Figures.Add((New-ChaosFigure -Name 'Inconsistent restores (not intact, not a committed prefix 1..k, or failing)' -Value $inconsistent.Count -Goal '0' -Met ($inconsistent.Count -eq 0)))
    $result.Figures.Add((New-ChaosFigure -Name 'Confirmed positions logged by the replicators' -Value ([long](@($series | ForEach-Object { $_.ConfirmedCount }) | Measure-Object -Sum).Sum)))
    $result.Figures.Add((New-ChaosFigure -Name 'Newest confirmed position per generation re-checked after a trial' -Value ([long](@($series | ForEach-Object { $_.PositionChecks }) | Measure-Object -Sum).Sum)))
    $result.Figures.Add((New-ChaosFigure -Name 'Confirmed positions missing after restore' -Value $missing -Goal '0' -Met ($missing -eq 0)))
    $provoked = @($trials | Where-Object Kind -eq 'generation-change').Count
    $result.Figures.Add((New-ChaosFigure -Name 'New generations forced (besides the first of each series)' -Value $forced.Count -Note ("$provoked generation-change trial(s) provoked one on purpose (the replicator dies inside it; the next start begins another); reasons logged: $reasons")))
    $result.Figures.Add((New-ChaosFigure -Name 'Final restore after SIGTERM equals the live database' -Value $(if ($finalOk.Count -eq 0) { 'yes' } else { 'no: ' + (($finalOk | ForEach-Object { $_.Name }) -join ', ') }) -Goal 'yes' -Met ($finalOk.Count -eq 0)))

    foreach ($trial in $inconsistent) {
        $result.Findings.Add((New-ChaosFinding -Campaign 'Crash' -Title "Inconsistent restore after $($trial.Series) trial $($trial.Number) ($($trial.Kind))" -Evidence ("killed after {0} ms ({1}); restore: {2}; problems: {3}" -f $trial.DelayMs, $trial.Phase, $trial.Restored, ($trial.Problems -join '; '))))
    }
    foreach ($s in $series) {
        foreach ($m in $s.MissingPositions) {
            $result.Findings.Add((New-ChaosFinding -Campaign 'Crash' -Title "Confirmed position $($m.Position) missing ($($s.Name) series, after trial $($m.Trial))" -Evidence $m.Detail))
        }
        if (-not $s.FinalEqual) {
            $result.Findings.Add((New-ChaosFinding -Campaign 'Crash' -Title "Final restore differs from the live database ($($s.Name) series)" -Evidence $s.FinalDetail))
        }
    }
    foreach ($trial in @($pointTrials | Where-Object { -not $_.EvidenceLine -or $_.ExitCode -ne 137 })) {
        $result.Notes.Add("$($trial.Series) trial $($trial.Number): crash point $($trial.Kind) not reached as expected (exit $($trial.ExitCode)): $($trial.Note)")
    }

    $result.RowColumns = @('Series', 'Number', 'Kind', 'DelayMs', 'Phase', 'ExitCode', 'Restored', 'MaxId', 'Consistent', 'NewGenerations')
    foreach ($t in $trials) { $result.Details.Add($t) }
    foreach ($s in $series) { $result.Notes.Add("$($s.Name) series: $($s.Trials.Count) trials, final: $($s.FinalDetail)") }
}

function Get-Shuffled {
    param([object[]]$Items, [System.Random]$Random)
    $list = [System.Collections.Generic.List[object]]::new([object[]]$Items)
    for ($i = $list.Count - 1; $i -gt 0; $i--) {
        $j = $Random.Next(0, $i + 1)
        $tmp = $list[$i]; $list[$i] = $list[$j]; $list[$j] = $tmp
    }
    @($list)
}

function Get-CrashGenerations {
    param([Parameter(Mandatory)]$Replica)
    $arguments = if ($Replica.Kind -eq 'file') { @{ ReplicaPath = $Replica.Path } } else { @{ ReplicaUrl = $Replica.Url; Endpoint = $Replica.Endpoint } }
    try { @(Get-ReplicaGeneration @arguments -ErrorAction Stop | ForEach-Object Generation) } catch { @() }
}

function Format-KillPhases {
    param($Trials)
    $random = @($Trials | Where-Object Kind -eq 'random')
    if ($random.Count -eq 0) { return '' }
    'landed: ' + (($random | Group-Object Phase | ForEach-Object { "$($_.Count) $($_.Name)" }) -join ', ')
}

function Invoke-CrashSeries {
    param(
        [Parameter(Mandatory)]$State,
        [Parameter(Mandatory)][object[]]$Kinds,
        [Parameter(Mandatory)][System.Random]$Random
    )
    $Name = $State.Name
    $state = $State
    $dir = Join-Path $Chaos.Scratch "crash-$Name"
    $null = New-Item -ItemType Directory -Path $dir -Force
    $db = Join-Path $dir 'app.db'
    $initialRows = 100
    $rowsPerTx = 3
    $null = New-TestDatabase -Path $db -Rows $initialRows
    $ledger = New-CommitLedger -InitialRows $initialRows

    if ($Name -eq 's3') {
        $s3 = Get-ChaosS3
        $bucket = New-ChaosBucket -Name 'crash'
        $replica = [pscustomobject]@{ Kind = 's3'; Url = "s3://$bucket/app.db"; Endpoint = $s3.Moto.Endpoint }
        $replicaParameters = @{ ReplicaUrl = $replica.Url; Endpoint = $s3.Proxy.Endpoint; SkipVerify = $true }
    }
    else {
        $replica = [pscustomobject]@{ Kind = 'file'; Path = Join-Path $dir 'replica' }
        $replicaParameters = @{ ReplicaPath = $replica.Path }
    }

    $writerOut = Join-Path $dir 'writer.out'
    $writer = Start-Writer write --db $db --count 0 --interval-ms 5 --rows-per-tx $rowsPerTx --blob-bytes 600 -StdoutPath $writerOut | Register-ChaosChild
    $null = $writer | Wait-WriterProgress -MinimumId ($initialRows + 30) -TimeoutSeconds 60

    # Newest confirmed position per generation, and what the exact restore of it gave.
    $newest = @{}
    $verified = @{}
    $deletedByRetention = [System.Collections.Generic.HashSet[string]]::new()
    $firstGeneration = $true

    $number = 0
    foreach ($kind in $Kinds) {
        $number++
        if ($writer.HasExited) { throw "The writer of the $Name series exited (code $($writer.ExitCode)): $(Read-ChaosText -Path "$writerOut.err")" }
        $log = Join-Path $dir ("replicator-{0:d3}.log" -f $number)
        $parameters = @{ DatabasePath = $db; MonitorInterval = '100ms'; SyncInterval = '200ms'; MinCheckpointPageCount = 200 } + $replicaParameters
        $environment = @{}
        if ($kind -ne 'random') { $environment.SQLITEREPLICA_CRASH_AT = $kind }
        switch ($kind) {
            'snapshot-upload' { $parameters.SnapshotInterval = '1s' }
            'retention-delete' { $parameters.SnapshotInterval = '1s'; $parameters.Retention = '3s'; $parameters.RetentionCheckInterval = '1s' }
            'generation-change' {
                # The application checkpoints and truncates its WAL while no replicator runs (as
                # SQLite's own autocheckpoint would): the next start cannot prove continuity.
                $null = Invoke-Writer exec --db $db --sql 'PRAGMA wal_checkpoint(TRUNCATE)'
            }
        }

        $generationsBefore = if ($kind -eq 'retention-delete') { @(Get-CrashGenerations -Replica $replica) } else { @() }
        $trial = [pscustomobject][ordered]@{
            Series = $Name; Number = $number; Kind = $kind; DelayMs = $null; Phase = ''; ExitCode = $null
            EvidenceLine = $null; Note = ''; Restored = ''; MaxId = $null; Consistent = $true; Problems = @(); NewGenerations = 0
        }
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $replicator = Start-ChaosReplicator -Parameters $parameters -LogPath $log -Environment $environment -NoWait | Register-ChaosChild
        if ($kind -eq 'random') {
            $delay = $Random.Next(200, 6001)
            $trial.DelayMs = $delay
            $remaining = $delay - $watch.ElapsedMilliseconds
            if ($remaining -gt 0) { Start-Sleep -Milliseconds $remaining }
            if ($replicator.HasExited) { $trial.Note = "the replicator had already exited: $(Limit-Text (Get-LogTail -Path $log -Lines 5))" }
            $trial.ExitCode = $replicator | Stop-ChaosProcessKill
        }
        else {
            $exited = $replicator.Process.WaitForExit(60000)
            $trial.DelayMs = $watch.ElapsedMilliseconds
            if (-not $exited) { $trial.Note = 'not reached within 60 s; killed' }
            $trial.ExitCode = $replicator | Stop-ChaosProcessKill
            $evidence = Select-String -LiteralPath $log -Pattern "^CRASHPOINT $([regex]::Escape($kind)) reached" | Select-Object -First 1
            if ($evidence) { $trial.EvidenceLine = $evidence.Line -replace 'process \d+', 'process <pid>' }
            elseif (-not $trial.Note) { $trial.Note = "no CRASHPOINT line; end of the log: $(Limit-Text (Get-LogTail -Path $log -Lines 6) 400)" }
        }

        $records = @(Get-ChaosLogLine -LogPath $log)
        $verbose = @($records | Where-Object Kind -eq 'VERBOSE' | ForEach-Object Text)
        $trial.Phase = if (-not ($verbose -match '^replicating ')) { 'during start-up' }
            elseif (-not ($verbose -match '(snapshot written|wal segment written)')) { 'before the first upload' }
            else { 'while replicating' }
        $lastWarning = $null
        foreach ($record in $records) {
            $line = $record.Text
            if ($record.Kind -eq 'WARNING' -and $line -match '^(init: |starting a new generation: )') { $lastWarning = $line; continue }
            if ($record.Kind -ne 'VERBOSE') { continue }
            $g = [regex]::Match($line, '^new generation (?<gen>[0-9a-f]{16}) started \(reason: (?<reason>.*)\) at ')
            if ($g.Success) {
                $reason = $g.Groups['reason'].Value
                # At start-up the reason is "no generation exists" once the init warning cleared the old one.
                if ($reason -eq 'no generation exists' -and $lastWarning) { $reason = $lastWarning }
                $lastWarning = $null
                if ($firstGeneration) { $firstGeneration = $false }
                else {
                    $trial.NewGenerations++
                    $state.ForcedGenerations.Add([pscustomobject]@{ Trial = $number; Generation = $g.Groups['gen'].Value; Reason = ($reason -replace '[0-9a-f]{16}', '<gen>' -replace '\d+', 'N'); Provoked = $kind -eq 'generation-change' })
                }
            }
            $d = [regex]::Match($line, 'retention deleted generation (?<gen>[0-9a-f]{16})')
            if ($d.Success) { $null = $deletedByRetention.Add($d.Groups['gen'].Value) }
        }
        if ($kind -eq 'retention-delete') {
            # Whole generations retention removed in this trial (its log line may have died with the process).
            $now = @(Get-CrashGenerations -Replica $replica)
            foreach ($g in $generationsBefore) { if ($g -notin $now) { $null = $deletedByRetention.Add($g) } }
        }
        $changed = [System.Collections.Generic.HashSet[string]]::new()
        foreach ($p in @(Get-ChaosConfirmed -LogPath $log)) {
            $state.ConfirmedCount++
            $current = $newest[$p.Generation]
            if ($null -eq $current -or (Compare-ChaosPosition $p $current) -gt 0) {
                $newest[$p.Generation] = $p
                $null = $changed.Add($p.Generation)
            }
        }

        # The restore of the newest state.
        $restore = Invoke-ChaosRestore -Replica $replica -Parent $dir
        $null = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
        $problems = [System.Collections.Generic.List[string]]::new()
        if (-not $restore.Ok) {
            if ($restore.ErrorId -like 'NoMatchingBackup*' -and $newest.Count -eq 0) {
                $trial.Restored = 'no backup yet'
            }
            else {
                $problems.Add("restore failed: $($restore.ErrorId): $(Limit-Text $restore.Message)")
                $trial.Restored = "failed: $($restore.ErrorId)"
            }
        }
        else {
            $judged = Test-CommittedPrefix -Dump $restore.Dump -Ledger $ledger -UnreportedRows $rowsPerTx
            $trial.MaxId = $judged.MaxId
            $trial.Restored = $restore.Result.Position
            foreach ($p in $judged.Problems) { $problems.Add($p) }
        }

        # Confirmed positions: the newest of each generation whose newest moved must restore
        # exactly, and what it holds must be in the newest restore.
        foreach ($gen in $changed) {
            $p = $newest[$gen]
            $state.PositionChecks++
            $exact = Get-RestoredMaxIdAt -Replica $replica -Position $p
            $verified[$gen] = [pscustomobject]@{ Position = $p; MaxId = $exact.MaxId; Ok = $exact.Ok; Detail = $exact.Detail }
            if (-not $exact.Ok -and -not $deletedByRetention.Contains($gen)) {
                $state.MissingPositions.Add([pscustomobject]@{ Trial = $number; Position = $p.Text; Detail = "the exact restore of it did not pass: $(Limit-Text $exact.Detail 400) (restored $($exact.RestoredPosition))" })
            }
        }
        if ($restore.Ok) {
            $latest = ConvertTo-ChaosPosition $restore.Result.Position
            foreach ($v in $verified.Values) {
                if (-not $v.Ok -or $null -eq $v.MaxId) { continue }
                if ($deletedByRetention.Contains($v.Position.Generation)) { continue }
                if ($trial.MaxId -lt $v.MaxId) {
                    $state.MissingPositions.Add([pscustomobject]@{ Trial = $number; Position = $v.Position.Text; Detail = "it holds ids up to $($v.MaxId), the newest restore ($($restore.Result.Position)) only up to $($trial.MaxId)" })
                }
                $cmp = Compare-ChaosPosition $latest $v.Position
                if ($null -ne $cmp -and $cmp -lt 0) {
                    $state.MissingPositions.Add([pscustomobject]@{ Trial = $number; Position = $v.Position.Text; Detail = "the newest restore of its generation stops earlier, at $($restore.Result.Position)" })
                }
            }
        }
        Remove-RestoreTarget $restore
        $trial.Problems = @($problems)
        $trial.Consistent = $problems.Count -eq 0
        $state.Trials.Add($trial)
        $text = "{0} trial {1}/{2}: {3}, {4} ms, {5}, exit {6}; restored {7} (max id {8}){9}" -f $Name, $number, $Kinds.Count, $kind, $trial.DelayMs, $trial.Phase, $trial.ExitCode, $trial.Restored, $trial.MaxId, $(if ($trial.Consistent) { '' } else { ' INCONSISTENT: ' + ($problems -join '; ') })
        Write-ChaosLine 'Crash' $text
    }

    # The end: the writer stops, a last replicator catches up and ends with SIGTERM.
    $null = $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30
    $null = Update-CommitLedger -Ledger $ledger -StdoutPath $writerOut
    $log = Join-Path $dir 'replicator-final.log'
    $final = $null
    try {
        $final = Start-ChaosReplicator -Parameters (@{ DatabasePath = $db; MonitorInterval = '100ms'; SyncInterval = '200ms'; MinCheckpointPageCount = 200 } + $replicaParameters) -LogPath $log -NoWait | Register-ChaosChild
        $null = Wait-LogLine -Path $log -Pattern '(wal segment written|snapshot written|resuming at)' -TimeoutSeconds 60 -Process $final
        Start-Sleep -Milliseconds 500
    }
    catch {
        $state.FinalDetail = "the final replicator did not sync: $(Limit-Text $_.Exception.Message 400)"
    }
    $finalFailed = $state.FinalDetail -ne 'not reached'

    $exit = if ($final) { $final | Stop-ChaosReplicator } else { $null }
    $summary = @(Get-ChaosLogLine -LogPath $log | Where-Object Kind -eq 'SUMMARY' | ForEach-Object { $_.Text | ConvertFrom-Json })
    $live = Get-DbDump -Path $db
    $restore = Invoke-ChaosRestore -Replica $replica -Parent $dir
    if (-not $finalFailed) {
        if (-not $restore.Ok) { $state.FinalDetail = "final restore failed: $($restore.ErrorId): $(Limit-Text $restore.Message)" }
        elseif ($restore.Dump.digest -ne $live.digest) { $state.FinalDetail = "restored max id $($restore.Dump.maxId), live max id $($live.maxId): contents differ (replicator exit $exit, caught up: $(@($summary | ForEach-Object CaughtUp) -join ','))" }
        elseif ($live.maxId -ne $ledger.LastId) { $state.FinalDetail = "the live database holds max id $($live.maxId) but the writer reported $($ledger.LastId)" }
        else {
            $state.FinalEqual = $true
            $state.FinalDetail = "replicator exit $exit, restored $($restore.Result.Position) = live database (max id $($live.maxId))"
        }
    }
    Remove-RestoreTarget $restore

    # Every generation's newest confirmed position, once more at the very end.
    foreach ($gen in @($newest.Keys)) {
        if ($deletedByRetention.Contains($gen)) { continue }
        $exact = Get-RestoredMaxIdAt -Replica $replica -Position $newest[$gen]
        $state.PositionChecks++
        if (-not $exact.Ok) {
            $state.MissingPositions.Add([pscustomobject]@{ Trial = 'end'; Position = $newest[$gen].Text; Detail = "at the end of the series the exact restore did not pass: $(Limit-Text $exact.Detail 400)" })
        }
    }
    Write-ChaosLine 'Crash' "$Name series final: $($state.FinalDetail)"
}
