# Harness self-checks (dot-sourced by Invoke-Chaos.ps1, run before the campaigns): each judge the
# campaigns rely on is shown a planted defect and must catch it, and a sound case and must pass
# it. A harness that cannot fail is worthless; these rows show that this one can.

function Invoke-HarnessControls {
    $result = New-CampaignResult -Name 'Controls' -Title 'Harness self-checks'
    $result.Description = 'Each judge the campaigns use is fed a planted defect (it must be caught) and a sound case (it must pass).'
    $dir = Join-Path $Chaos.Scratch 'controls'
    $null = New-Item -ItemType Directory -Path $dir -Force
    $rows = [System.Collections.Generic.List[object]]::new()
    $check = {
        param([string]$Judge, [string]$Planted, [bool]$Caught, [bool]$SoundPassed)
        $rows.Add([pscustomobject][ordered]@{ Judge = $Judge; Planted = $Planted; Caught = $Caught; SoundCasePassed = $SoundPassed; Ok = ($Caught -and $SoundPassed) })
    }
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    try {
        # The committed-prefix judge.
        $db = Join-Path $dir 'prefix.db'
        $null = New-TestDatabase -Path $db -Rows 30
        $ledger = New-CommitLedger -InitialRows 30
        $sound = Test-CommittedPrefix -Dump (Get-DbDump -Path $db) -Ledger $ledger
        $null = Invoke-Writer exec --db $db --sql 'DELETE FROM t WHERE id = 15'
        $gap = Test-CommittedPrefix -Dump (Get-DbDump -Path $db) -Ledger $ledger
        & $check 'committed prefix (ids 1..k)' 'row 15 of 30 deleted (a gap)' (-not $gap.Consistent) $sound.Consistent
        $short = New-CommitLedger -InitialRows 20
        $db2 = Join-Path $dir 'tail.db'
        $null = New-TestDatabase -Path $db2 -Rows 30
        $dump2 = Get-DbDump -Path $db2
        $tail = Test-CommittedPrefix -Dump $dump2 -Ledger $short
        $allowed = Test-CommittedPrefix -Dump $dump2 -Ledger $short -UnreportedRows 10
        & $check 'committed prefix (whole transactions)' 'ids 21..30 never reported as committed' (-not $tail.Consistent) $allowed.Consistent
        $ahead = Test-CommittedPrefix -Dump $dump2 -Ledger (New-CommitLedger -InitialRows 30) -MaxCommittedId 25
        $notAhead = Test-CommittedPrefix -Dump $dump2 -Ledger (New-CommitLedger -InitialRows 30) -MaxCommittedId 30
        & $check 'no more than the live database committed' 'replica max id 30, live committed 25' (-not $ahead.Consistent) $notAhead.Consistent

        # The confirmed-position judge: a real replica, then its newest segment removed.
        $db3 = Join-Path $dir 'positions.db'
        $null = New-TestDatabase -Path $db3 -Rows 10
        $replica = [pscustomobject]@{ Kind = 'file'; Path = (Join-Path $dir 'replica') }
        $replicator = Start-ChaosReplicator -Parameters @{ DatabasePath = $db3; ReplicaPath = $replica.Path; MonitorInterval = '100ms'; SyncInterval = '100ms' } -LogPath (Join-Path $dir 'replicator.log') | Register-ChaosChild
        $null = Invoke-Writer write --db $db3 --count 20 --interval-ms 20
        $null = Wait-LogLine -Path $replicator.LogPath -Pattern 'wal segment written' -TimeoutSeconds 30 -Process $replicator
        Start-Sleep -Milliseconds 500
        $null = $replicator | Stop-ChaosReplicator
        $newest = @(Get-ChaosConfirmed -LogPath $replicator.LogPath)[-1]
        $before = Get-RestoredMaxIdAt -Replica $replica -Position $newest
        $segment = @(Get-ReplicaFile $replica.Path | Where-Object Kind -eq 'wal')[-1]
        Remove-Item -LiteralPath $segment.Path
        $after = Get-RestoredMaxIdAt -Replica $replica -Position $newest
        & $check 'confirmed position still restorable' "the segment holding $($newest.Text) deleted" (-not $after.Ok) ($before.Ok -and $before.MaxId -eq 30)

        # The secret scanner and the mode check.
        $secret = 'chaosPlantedSecret' + [guid]::NewGuid().ToString('N')
        $bytes = [System.Text.Encoding]::Unicode.GetBytes("prefix $secret suffix")
        $found = (Find-Bytes -Haystack $bytes -Needle ([System.Text.Encoding]::Unicode.GetBytes($secret))) -ge 0
        $clean = (Find-Bytes -Haystack ([System.Text.Encoding]::UTF8.GetBytes('nothing here')) -Needle ([System.Text.Encoding]::UTF8.GetBytes($secret))) -lt 0
        $text = Invoke-CapturedText -Block { Write-Error -Message "failure for $secret" -ErrorId 'Planted' -ErrorAction Continue }
        & $check 'secret scanner' 'a secret in UTF-16 bytes and in an error record' ($found -and $text.Contains($secret)) $clean
        $open = Join-Path $dir 'world-readable.txt'
        [System.IO.File]::WriteAllText($open, 'x')
        [System.IO.File]::SetUnixFileMode($open, [System.IO.UnixFileMode]'UserRead, UserWrite, GroupRead, OtherRead')
        $private = Join-Path $dir 'private.txt'
        [System.IO.File]::WriteAllText($private, 'x')
        [System.IO.File]::SetUnixFileMode($private, [System.IO.UnixFileMode]'UserRead, UserWrite')
        & $check 'file mode check' 'a 0644 file' ((Get-UnixModeEntry -Path $open)[0].WorldReadable) (-not (Get-UnixModeEntry -Path $private)[0].WorldReadable)

        # The hostile-case judge.
        $fake = [pscustomobject]@{ Rows = [System.Collections.Generic.List[object]]::new() }
        Add-HostileRow -Context $fake -Category 'control' -Case 'planted InternalError' -Expected @('SegmentCorrupt') -ErrorId 'InternalError,X' -Quiet
        Add-HostileRow -Context $fake -Category 'control' -Case 'planted silent success' -Expected @('SegmentMissing') -Succeeded -Quiet
        Add-HostileRow -Context $fake -Category 'control' -Case 'planted wrong database' -Expected @('ok') -Succeeded -WrongDb 'an older state' -Quiet
        Add-HostileRow -Context $fake -Category 'control' -Case 'sound case' -Expected @('SegmentCorrupt') -ErrorId 'SegmentCorrupt,X' -Quiet
        $verdicts = @($fake.Rows | ForEach-Object Verdict)
        & $check 'hostile-case judge' 'InternalError, a silent success, a wrong database' (@($verdicts[0..2] | Where-Object { $_ -like 'FINDING*' }).Count -eq 3) ($verdicts[3] -eq 'ok')
    }
    catch {
        $result.HarnessError = "$($_.Exception.Message) at $($_.InvocationInfo.PositionMessage)"
        Write-ChaosLine 'Controls' "HARNESS ERROR: $($_.Exception.Message)"
    }
    finally {
        Stop-ChaosChildren
    }
    $passed = @($rows | Where-Object Ok).Count
    $result.Figures.Add((New-ChaosFigure -Name 'Self-checks passed (planted defect caught, sound case passed)' -Value ("{0} of {1}" -f $passed, $rows.Count) -Goal 'all' -Met ($passed -eq $rows.Count -and $rows.Count -ge 7)))
    $result.RowColumns = @('Judge', 'Planted', 'Caught', 'SoundCasePassed')
    foreach ($r in $rows) { $result.Rows.Add($r) }
    $result.Seconds = [Math]::Round($watch.Elapsed.TotalSeconds, 1)
    Write-ChaosLine 'Controls' ("{0} of {1} self-checks passed in {2:F0} s" -f $passed, $rows.Count, $result.Seconds)
    $result
}
