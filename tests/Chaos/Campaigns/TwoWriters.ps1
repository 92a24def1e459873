# Campaign d: a second replicator where one already runs: on the same database (also reached
# through another meta path or a symbolic link), and on the same replica location from another
# database (file and S3, also right after the first one was killed with SIGKILL). Each must be
# refused with AlreadyReplicating within seconds, and the first replicator's replica must stay whole.

function Invoke-TwoWritersCampaign {
    param([Parameter(Mandatory)]$Result)
    $Result.Title = 'd. Two writers: a second replicator on the same database or the same replica location'
    $Result.Description = (
        'The first replicator (A) runs while the writer commits to its database; a second one (B) is started as its own pwsh process ' +
        'and must exit with AlreadyReplicating. "Seconds" is B''s whole life, pwsh start-up and module load included. A case where ' +
        'B keeps running (12 s in Quick mode, 30 s in Long mode) is "not refused" and B is killed. At the end the writers stop, every A ends with SIGTERM, and each ' +
        'A replica must restore to exactly its live database (B damaged nothing).')
    $patience = if ($Chaos.Quick) { 12 } else { 30 }
    $dir = Join-Path $Chaos.Scratch 'two-writers'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $s3 = Get-ChaosS3
    $bucket = New-ChaosBucket -Name 'two'

    $make = {
        param([string]$Name)
        $db = Join-Path $dir "$Name.db"
        $null = New-TestDatabase -Path $db -Rows 50
        $db
    }
    $db1 = & $make 'one'
    $db2 = & $make 'two'
    $db3 = & $make 'three'
    $db4 = & $make 'four'
    $r1 = Join-Path $dir 'replica-one'
    $url3 = "s3://$bucket/three.db"
    $common = @{ MonitorInterval = '100ms'; SyncInterval = '200ms' }
    $s3Parameters = @{ Endpoint = $s3.Proxy.Endpoint; SkipVerify = $true }

    $a1 = Start-ChaosReplicator -Parameters (@{ DatabasePath = $db1; ReplicaPath = $r1 } + $common) -LogPath (Join-Path $dir 'a1.log') | Register-ChaosChild
    $a3 = Start-ChaosReplicator -Parameters (@{ DatabasePath = $db3; ReplicaUrl = $url3 } + $common + $s3Parameters) -LogPath (Join-Path $dir 'a3.log') | Register-ChaosChild
    $w1 = Start-Writer write --db $db1 --count 0 --interval-ms 20 -StdoutPath (Join-Path $dir 'w1.out') | Register-ChaosChild
    $w3 = Start-Writer write --db $db3 --count 0 --interval-ms 20 -StdoutPath (Join-Path $dir 'w3.out') | Register-ChaosChild
    $null = Wait-LogLine -Path $a1.LogPath -Pattern 'wal segment written' -TimeoutSeconds 60 -Process $a1
    $null = Wait-LogLine -Path $a3.LogPath -Pattern 'wal segment written' -TimeoutSeconds 60 -Process $a3

    $link = Join-Path $dir 'link-to-one.db'
    $null = New-Item -ItemType SymbolicLink -Path $link -Target $db1
    $r1Link = Join-Path $dir 'replica-one-link'
    $null = New-Item -ItemType SymbolicLink -Path $r1Link -Target $r1

    $cases = @(
        @{ Case = 'same database'; Parameters = @{ DatabasePath = $db1; ReplicaPath = (Join-Path $dir 'replica-b1') } }
        @{ Case = 'same database, another -MetaPath'; Parameters = @{ DatabasePath = $db1; ReplicaPath = (Join-Path $dir 'replica-b2'); MetaPath = (Join-Path $dir 'other-meta') } }
        @{ Case = 'same database through a symbolic link'; Parameters = @{ DatabasePath = $link; ReplicaPath = (Join-Path $dir 'replica-b3') } }
        @{ Case = 'same file replica location, another database'; Parameters = @{ DatabasePath = $db2; ReplicaPath = $r1 } }
        @{ Case = 'same file replica location spelled through a symbolic link'; Parameters = @{ DatabasePath = $db2; ReplicaPath = $r1Link } }
        @{ Case = 'same S3 replica location, another database'; Parameters = (@{ DatabasePath = $db4; ReplicaUrl = $url3 } + $s3Parameters) }
        @{ Case = 'same S3 location right after the first replicator was killed with SIGKILL'; Parameters = (@{ DatabasePath = $db4; ReplicaUrl = $url3 } + $s3Parameters); KillFirst = $true }
    )

    $rows = [System.Collections.Generic.List[object]]::new()
    try {
        $number = 0
        foreach ($case in $cases) {
            $number++
            if ($case.ContainsKey('KillFirst')) {
                $null = $a3 | Stop-ChaosProcessKill
            }
            $log = Join-Path $dir ("b{0}.log" -f $number)
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            $b = Start-ChaosReplicator -Parameters ($case.Parameters + $common) -LogPath $log -NoWait | Register-ChaosChild
            $exited = $b.Process.WaitForExit($patience * 1000)
            $seconds = [Math]::Round($watch.Elapsed.TotalSeconds, 1)
            if (-not $exited) { $null = $b | Stop-ChaosProcessKill }
            else { $null = Wait-ProcessGroupExit -Pgid $b.Pgid -TimeoutSeconds 10 }
            $ids = @(Get-ChaosLogLine -LogPath $log | Where-Object Kind -eq 'ERRORID' | ForEach-Object Text)
            $message = @(Get-ChaosLogLine -LogPath $log | Where-Object Kind -eq 'ERROR' | ForEach-Object Text) | Select-Object -First 1
            $refused = $exited -and @($ids | Where-Object { $_ -like 'AlreadyReplicating*' }).Count -gt 0
            $row = [pscustomobject][ordered]@{
                Case      = $case.Case
                Outcome   = if ($refused) { 'refused' } elseif ($exited) { 'failed otherwise' } else { "NOT refused (kept replicating $patience s)" }
                ErrorId   = if ($ids.Count) { ($ids[0] -split ',')[0] } else { '' }
                Seconds   = $seconds
                Message   = Limit-Text (ConvertTo-ScrubbedText $message) 220
            }
            $rows.Add($row)
            Write-ChaosLine 'TwoWriters' ("{0}: {1} ({2}) after {3} s" -f $row.Case, $row.Outcome, $row.ErrorId, $row.Seconds)
            if (-not $refused) {
                $evidence = if ($exited) { "exit $($b.ExitCode), error ids: $($ids -join ', '): $message" } else { "B logged: " + ((Get-ChaosLogLine -LogPath $log | Where-Object { $_.Kind -eq 'VERBOSE' } | Select-Object -First 4 | ForEach-Object Text) -join ' / ') }
                $Result.Findings.Add((New-ChaosFinding -Campaign 'TwoWriters' -Title "A second replicator was not refused: $($case.Case)" -Evidence $evidence))
            }
            if ($case.ContainsKey('KillFirst')) {
                # The first replicator itself, restarted after its SIGKILL, takes its own lease back at once.
                $a3 = Start-ChaosReplicator -Parameters (@{ DatabasePath = $db3; ReplicaUrl = $url3 } + $common + $s3Parameters) -LogPath (Join-Path $dir 'a3-restarted.log') -NoWait | Register-ChaosChild
                $ok = $true
                try { $null = Wait-LogLine -Path $a3.LogPath -Pattern '(wal segment written|snapshot written|resuming at)' -TimeoutSeconds 30 -Process $a3 } catch { $ok = $false }
                $Result.Notes.Add("after its SIGKILL the first S3 replicator restarted $(if ($ok) { 'and took its own lease back at once' } else { 'but could NOT replicate: ' + (Limit-Text (Get-LogTail -Path $a3.LogPath -Lines 3) 300) })")
                if (-not $ok) { $Result.Findings.Add((New-ChaosFinding -Campaign 'TwoWriters' -Title 'A replicator restarted after SIGKILL could not take its own S3 lease back' -Evidence (Get-LogTail -Path $a3.LogPath -Lines 4))) }
            }
        }

        # Is a symbolic link to a database usable at all? One replicator, nobody else on that database.
        $link2 = Join-Path $dir 'link-to-two.db'
        $null = New-Item -ItemType SymbolicLink -Path $link2 -Target $db2
        $single = Start-ChaosReplicator -Parameters (@{ DatabasePath = $link2; ReplicaPath = (Join-Path $dir 'replica-link-two') } + $common) -LogPath (Join-Path $dir 'single-link.log') -NoWait | Register-ChaosChild
        $null = Wait-Until -TimeoutSeconds 30 -Message 'the replicator on a symbolic link to start or fail' -Condition { $single.HasExited -or (Select-String -LiteralPath $single.LogPath -Pattern 'wal segment written' -Quiet) }
        $singleIds = @(Get-ChaosLogLine -LogPath $single.LogPath | Where-Object Kind -eq 'ERRORID' | ForEach-Object { ($_.Text -split ',')[0] })
        $singleText = if ($single.HasExited) { "a single replicator on a symbolic link to a database nobody else replicates also fails: $($singleIds -join ', ') $(@(Get-ChaosLogLine -LogPath $single.LogPath | Where-Object Kind -eq 'ERROR' | ForEach-Object Text) | Select-Object -First 1)" } else { 'a single replicator on a symbolic link to a database nobody else replicates works' }
        if (-not $single.HasExited) { $null = $single | Stop-ChaosReplicator }
        $Result.Notes.Add($singleText)
        foreach ($f in @($Result.Findings | Where-Object { $_.Title -like '*symbolic link*' -and $_.Title -notlike '*location*' })) { $f.Evidence = ConvertTo-ScrubbedText ($f.Evidence + '; ' + $singleText) }

        # A's replicas must be whole: stop the writers, SIGTERM A, restore, compare.
        foreach ($w in $w1, $w3) { $null = $w | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 }
        $checks = @(
            @{ Name = 'file replica of A'; Replicator = $a1; Db = $db1; Replica = [pscustomobject]@{ Kind = 'file'; Path = $r1 } }
            @{ Name = 'S3 replica of A'; Replicator = $a3; Db = $db3; Replica = [pscustomobject]@{ Kind = 's3'; Url = $url3; Endpoint = $s3.Moto.Endpoint } }
        )
        foreach ($c in $checks) {
            $code = $c.Replicator | Stop-ChaosReplicator
            $live = Get-DbDump -Path $c.Db
            $restore = Invoke-ChaosRestore -Replica $c.Replica -Parent $dir
            $equal = $restore.Ok -and $restore.Dump.digest -eq $live.digest
            $Result.Figures.Add((New-ChaosFigure -Name "The $($c.Name) restores to exactly its live database afterwards" -Value $(if ($equal) { 'yes' } else { 'no' }) -Goal 'yes' -Met $equal -Note "A exit $code; $(if ($restore.Ok) { "restored $($restore.Result.Position), max id $($restore.Dump.maxId) (live $($live.maxId))" } else { $restore.ErrorId })"))
            if (-not $equal) { $Result.Findings.Add((New-ChaosFinding -Campaign 'TwoWriters' -Title "The $($c.Name) does not restore to its live database after the second-writer attempts" -Evidence "live max id $($live.maxId); restore: $(if ($restore.Ok) { "$($restore.Result.Position) max id $($restore.Dump.maxId)" } else { "$($restore.ErrorId) $($restore.Message)" })")) }
            Remove-RestoreTarget $restore
        }
    }
    finally {
        $refusedRows = @($rows | Where-Object Outcome -eq 'refused')
        $slowest = ($refusedRows | Measure-Object -Property Seconds -Maximum).Maximum
        $Result.Figures.Insert(0, (New-ChaosFigure -Name 'Second replicators refused with AlreadyReplicating' -Value ("{0} of {1}" -f $refusedRows.Count, $rows.Count) -Goal 'all' -Met ($refusedRows.Count -eq $rows.Count -and $rows.Count -eq $cases.Count)))
        $Result.Figures.Insert(1, (New-ChaosFigure -Name 'Slowest refusal (process start to exit)' -Value $(if ($null -ne $slowest) { "{0:F1} s" -f $slowest } else { 'n/a' }) -Goal '<= 10 s' -Met ($null -ne $slowest -and $slowest -le 10)))
        $Result.RowColumns = @('Case', 'Outcome', 'ErrorId', 'Seconds', 'Message')
        foreach ($r in $rows) { $Result.Rows.Add($r) }
    }
}
