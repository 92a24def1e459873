#Requires -Version 7.6
# Crash safety of Start-SqliteReplication: while the application (the writer process) commits
# continuously, the replicator's whole process group is killed with SIGKILL at random moments
# and started again. After every kill the replica must restore to a consistent database that
# holds a prefix of the committed rows and at least everything the replicator had reported as
# confirmed. Run through `build.ps1 Test` (SQLITEREPLICA_MODULE, SQLITEREPLICA_WRITER).
#
# SQLITEREPLICA_CRASH_TRIALS sets the number of kills (default 8);
# SQLITEREPLICA_CRASH_SEED fixes the random delays (the seed used is printed).

Describe 'Start-SqliteReplication killed with SIGKILL under continuous writes' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'IntegrationHelpers.psm1') -Force
        Import-Module -Name $env:SQLITEREPLICA_MODULE -Force -ErrorAction Stop

        $script:Trials = if ($env:SQLITEREPLICA_CRASH_TRIALS) { [int]$env:SQLITEREPLICA_CRASH_TRIALS } else { 8 }
        $script:Seed = if ($env:SQLITEREPLICA_CRASH_SEED) { [int]$env:SQLITEREPLICA_CRASH_SEED } else { [System.Random]::Shared.Next() }
        # The writer commits ids 1..InitialRows one per transaction, then RowsPerTx per transaction.
        $script:InitialRows = 100
        $script:RowsPerTx = 3

        # Checks one restored database: intact, and exactly the ids 1..k of whole transactions,
        # none of which the writer has not committed yet.
        function Assert-ConsistentRestore {
            param([Parameter(Mandatory)][string]$Path, [Parameter(Mandatory)]$Writer, [Parameter(Mandatory)][string]$Context)
            $dump = Get-DbDump -Path $Path
            $committed = $Writer.GetLastCommittedId()   # read after the restore: it only grows
            $dump.integrity | Should -Be 'ok' -Because $Context
            $dump.maxId | Should -Not -BeNullOrEmpty -Because $Context
            # Primary keys are distinct and positive: count = max means exactly 1..max.
            $dump.tables.t | Should -Be $dump.maxId -Because "the restored ids must be the prefix 1..k ($Context)"
            $dump.maxId | Should -BeLessOrEqual $committed -Because "nothing uncommitted may appear ($Context)"
            if ($dump.maxId -gt $script:InitialRows) {
                (($dump.maxId - $script:InitialRows) % $script:RowsPerTx) | Should -Be 0 -Because "transactions are restored whole, got max id $($dump.maxId) ($Context)"
            }
            $dump
        }
    }

    AfterAll {
        Stop-TestProcess -All -Signal KILL -TimeoutSeconds 5
        Remove-Module -Name SqliteReplica -Force -ErrorAction Ignore
    }

    It 'restores a consistent prefix holding every confirmed position after each kill, and everything after a final SIGTERM' {
        Write-Host "    crash trials: $script:Trials, seed: $script:Seed"
        $random = [System.Random]::new($script:Seed)
        $db = Join-Path $TestDrive 'app.db'
        $replica = Join-Path $TestDrive 'replica'
        $null = New-TestDatabase -Path $db -Rows $script:InitialRows
        # A low PASSIVE threshold, so that kills also land around WAL restarts.
        $parameters = @{ MinCheckpointPageCount = 200 }
        $writer = Start-Writer write --db $db --count 0 --interval-ms 10 --rows-per-tx $script:RowsPerTx --blob-bytes 600 -StdoutPath (Join-Path $TestDrive 'writer.out')
        $null = $writer | Wait-WriterProgress -MinimumId ($script:InitialRows + 30) -TimeoutSeconds 60

        $lastConfirmed = $null
        $generations = [System.Collections.Generic.HashSet[string]]::new()
        for ($trial = 1; $trial -le $script:Trials; $trial++) {
            $log = Join-Path $TestDrive "replicator-$trial.log"
            $replicator = Start-TestReplicator -DatabasePath $db -ReplicaPath $replica -Parameters $parameters -LogPath $log
            $delay = 500 + $random.Next(0, 2501)
            Start-Sleep -Milliseconds $delay
            $writer.HasExited | Should -BeFalse -Because 'the writer must keep writing'

            $replicator | Send-ProcessGroupSignal -Signal KILL
            $null = Wait-ProcessGroupExit -Pgid $replicator.Pgid -TimeoutSeconds 30
            $replicator.Process.WaitForExit(10000) | Should -BeTrue
            $replicator.Process.ExitCode | Should -Be 137 -Because "trial $trial must end by the SIGKILL: $(Get-LogTail -Path $log)"

            $confirmed = @(Get-ConfirmedPosition -LogPath $log)
            if ($confirmed.Count -gt 0) { $lastConfirmed = $confirmed[-1] }
            $context = "trial $trial, seed $script:Seed, kill after $delay ms, last confirmed $(if ($lastConfirmed) { $lastConfirmed.Text } else { 'none' })"

            if ($null -eq $lastConfirmed -and @(Get-ReplicaSnapshot -ReplicaPath $replica).Count -eq 0) {
                Write-Host "    trial ${trial}: killed after $delay ms before any snapshot"
                continue
            }

            $target = New-RestoreTarget -Parent $TestDrive
            $restored = Restore-SqliteReplica -ReplicaPath $replica -OutputPath $target -ErrorAction Stop
            $dump = Assert-ConsistentRestore -Path $target -Writer $writer -Context $context
            $null = $generations.Add($restored.Generation)
            $line = "    trial ${trial}: killed after $delay ms; confirmed $(if ($lastConfirmed) { $lastConfirmed.Text } else { 'none' }); restored $($restored.Position) (max id $($dump.maxId))"

            if ($lastConfirmed) {
                $position = ConvertTo-ReplicaPosition $restored.Position
                if ($position.Generation -ne $lastConfirmed.Generation) {
                    # The restore picked a newer generation: the confirmed one must still be whole.
                    $older = New-RestoreTarget -Parent $TestDrive
                    $restoredOlder = Restore-SqliteReplica -ReplicaPath $replica -OutputPath $older -Generation $lastConfirmed.Generation -ErrorAction Stop
                    $null = Assert-ConsistentRestore -Path $older -Writer $writer -Context "$context, generation $($lastConfirmed.Generation)"
                    $position = ConvertTo-ReplicaPosition $restoredOlder.Position
                    $line += "; generation $($lastConfirmed.Generation) restored to $($restoredOlder.Position)"
                }
                Compare-ReplicaPosition $position $lastConfirmed | Should -BeGreaterOrEqual 0 -Because "a confirmed position must never be lost ($context, restored $($position.Text))"
            }
            Write-Host $line
        }

        # The end: the writer stops, a last replicator catches up and ends with SIGTERM.
        $final = Start-TestReplicator -DatabasePath $db -ReplicaPath $replica -Parameters $parameters -LogPath (Join-Path $TestDrive 'replicator-final.log')
        $null = Wait-LogLine -Path $final.LogPath -Pattern 'wal segment written' -TimeoutSeconds 60 -Process $final
        $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill | Should -Be 0
        $lastId = $writer.GetLastCommittedId()
        $final | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0 -Because (Get-LogTail -Path $final.LogPath)
        @(Get-ReplicatorSummary -LogPath $final.LogPath)[0].CaughtUp | Should -BeTrue

        $source = Get-DbDump -Path $db
        $source.maxId | Should -Be $lastId
        $target = New-RestoreTarget -Parent $TestDrive
        $restored = Restore-SqliteReplica -ReplicaPath $replica -OutputPath $target -ErrorAction Stop
        $dump = Get-DbDump -Path $target
        $dump.integrity | Should -Be 'ok'
        $dump.digest | Should -Be $source.digest
        $dump.maxId | Should -Be $lastId
        Write-Host "    final: restored $($restored.Position) (max id $($dump.maxId)); generations seen after kills: $($generations.Count)"
    }
}
