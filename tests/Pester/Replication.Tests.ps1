#Requires -Version 7.6
# Start-SqliteReplication end to end: the replicator runs as a separate pwsh process in its
# own process group, the application is the separate writer process (tests/SqliteWriter),
# and every check restores the replica with Restore-SqliteReplica and compares the writer's
# content digest with the source's. Run through `build.ps1 Test`, which sets
# SQLITEREPLICA_MODULE and SQLITEREPLICA_WRITER.

BeforeDiscovery {
    $script:IsRoot = (& id -u) -eq '0'
}

Describe 'Start-SqliteReplication in a separate process' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'IntegrationHelpers.psm1') -Force
        Import-Module -Name $env:SQLITEREPLICA_MODULE -Force -ErrorAction Stop

        # Restores the replica into a fresh file and returns the restore result and the dump.
        function Restore-Fresh {
            param([Parameter(Mandatory)][string]$Replica)
            $target = New-RestoreTarget -Parent $TestDrive
            $result = Restore-SqliteReplica -ReplicaPath $Replica -OutputPath $target -ErrorAction Stop
            [pscustomobject]@{ Result = $result; Dump = Get-DbDump -Path $target; Path = $target }
        }

        # The common ending of a scenario: SIGTERM, exit 0, every replica caught up, and a
        # restore equal to the source (read after the replicator ended, so it is final).
        function Complete-Scenario {
            param([Parameter(Mandatory)]$Replicator, [Parameter(Mandatory)][string]$Database, [Parameter(Mandatory)][string]$Replica)
            $Replicator | Stop-TestReplicator -TimeoutSeconds 30 | Should -Be 0 -Because (Get-LogTail -Path $Replicator.LogPath)
            $summary = @(Get-ReplicatorSummary -LogPath $Replicator.LogPath)
            $summary.Count | Should -Be 1
            $summary[0].CaughtUp | Should -BeTrue -Because (Get-LogTail -Path $Replicator.LogPath)
            $source = Get-DbDump -Path $Database
            $restored = Restore-Fresh -Replica $Replica
            $restored.Dump.integrity | Should -Be 'ok'
            $restored.Dump.digest | Should -Be $source.digest -Because "the restore must hold every committed row (source $($source | ConvertTo-Json -Compress), restored $($restored.Dump | ConvertTo-Json -Compress))"
            $restored.Result.Position | Should -Be $summary[0].ConfirmedPosition
            [pscustomobject]@{ Source = $source; Restored = $restored; Summary = $summary[0] }
        }

        function New-Scenario {
            param([Parameter(Mandatory)][string]$Name)
            $dir = Join-Path $TestDrive $Name
            $null = New-Item -ItemType Directory -Path $dir
            [pscustomobject]@{ Dir = $dir; Db = Join-Path $dir 'app.db'; Replica = Join-Path $dir 'replica'; Log = Join-Path $dir 'replicator.log' }
        }
    }

    AfterAll {
        Stop-TestProcess -All -Signal KILL -TimeoutSeconds 5
        Remove-TmpfsMount -All
        Remove-Module -Name SqliteReplica -Force -ErrorAction Ignore
    }

    Context 'Shutdown' {
        It 'ends on SIGTERM within 30 s with exit code 0, and the replica restores every committed row' {
            $s = New-Scenario -Name 'sigterm'
            $null = New-TestDatabase -Path $s.Db -Rows 20
            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            $writer = Start-Writer write --db $s.Db --count 0 --interval-ms 2 --rows-per-tx 3 -StdoutPath (Join-Path $s.Dir 'writer.out')
            $null = $writer | Wait-WriterProgress -MinimumId 400 -TimeoutSeconds 60
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal segment written' -TimeoutSeconds 30 -Process $replicator

            # The writer stops first (it finishes its transaction and exits 0), so the source is final.
            $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill | Should -Be 0
            $lastId = $writer.GetLastCommittedId()

            $replicator | Send-ProcessGroupSignal -Signal TERM
            $elapsed = Wait-ProcessGroupExit -Pgid $replicator.Pgid -TimeoutSeconds 30
            $elapsed | Should -BeLessThan 30
            $replicator.Process.WaitForExit(10000) | Should -BeTrue
            $replicator.Process.ExitCode | Should -Be 0 -Because (Get-LogTail -Path $s.Log)
            Get-Content -LiteralPath $s.Log | Should -Contain 'VERBOSE: replication stopped'

            $summary = @(Get-ReplicatorSummary -LogPath $s.Log)
            $summary.Count | Should -Be 1
            $summary[0].CaughtUp | Should -BeTrue
            $summary[0].ConfirmedPosition | Should -Be $summary[0].LocalPosition

            $source = Get-DbDump -Path $s.Db
            $source.maxId | Should -Be $lastId
            $restored = Restore-Fresh -Replica $s.Replica
            $restored.Dump.integrity | Should -Be 'ok'
            $restored.Dump.maxId | Should -Be $lastId
            $restored.Dump.tables.t | Should -Be $lastId
            $restored.Dump.digest | Should -Be $source.digest
        }
    }

    Context 'Application behaviours' {
        It 'replicates across the application''s default autocheckpoint (more than 1000 WAL pages)' {
            $s = New-Scenario -Name 'autocheckpoint'
            $null = New-TestDatabase -Path $s.Db
            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            # About 1.25 pages per row: ~1900 WAL pages from SQLite's default autocheckpoint (1000) app.
            $out = Invoke-Writer write --db $s.Db --count 1500 --rows-per-tx 10 --blob-bytes 4000 --interval-ms 5
            @($out)[-1] | Should -Be 'done 1500'

            $result = Complete-Scenario -Replicator $replicator -Database $s.Db -Replica $s.Replica
            $result.Restored.Dump.maxId | Should -Be 1500
            # The WAL was restarted at least once while replicating: the scenario really crossed a checkpoint.
            (Get-ReplicaWalSegment -ReplicaPath $s.Replica | Measure-Object -Property Index -Maximum).Maximum | Should -BeGreaterOrEqual 1
        }

        It 'replicates while the application runs wal_checkpoint(TRUNCATE) itself' {
            $s = New-Scenario -Name 'truncate'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            # The writer's own TRUNCATE (its connection has a 10 s busy timeout, which the
            # replicator's read transaction may use up: one checkpoint only, to keep it short).
            $out = Invoke-Writer write --db $s.Db --count 300 --rows-per-tx 4 --blob-bytes 500 --interval-ms 5 --checkpoint-every 40 --checkpoint-mode truncate
            @($out | Where-Object { $_ -like 'checkpoint truncate*' }).Count | Should -Be 1
            @($out)[-1] | Should -Be 'done 300'
            # Then periodic TRUNCATE checkpoints from another application connection, between writes.
            foreach ($round in 1..3) {
                $null = Invoke-Writer exec --db $s.Db --sql 'PRAGMA busy_timeout = 200; PRAGMA wal_checkpoint(TRUNCATE)'
                $null = Invoke-Writer write --db $s.Db --count 40 --rows-per-tx 4 --blob-bytes 500 --interval-ms 5
            }

            $result = Complete-Scenario -Replicator $replicator -Database $s.Db -Replica $s.Replica
            $result.Restored.Dump.maxId | Should -Be 430
        }

        It 'replicates VACUUM' {
            $s = New-Scenario -Name 'vacuum'
            $null = New-TestDatabase -Path $s.Db -Rows 200
            # Holes first, so that VACUUM really moves pages.
            $null = Invoke-Writer exec --db $s.Db --sql 'DELETE FROM t WHERE id % 3 = 0'
            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            $out = Invoke-Writer write --db $s.Db --count 300 --rows-per-tx 5 --blob-bytes 800 --interval-ms 5 --vacuum-every 15
            @($out | Where-Object { $_ -eq 'vacuum' }).Count | Should -Be 4
            $null = Invoke-Writer exec --db $s.Db --sql 'DELETE FROM t WHERE id % 7 = 0; VACUUM'

            $result = Complete-Scenario -Replicator $replicator -Database $s.Db -Replica $s.Replica
            $result.Restored.Dump.maxId | Should -Be 500
        }

        It 'replicates schema changes' {
            $s = New-Scenario -Name 'schema'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            $out = Invoke-Writer write --db $s.Db --count 100 --rows-per-tx 2 --interval-ms 5 --schema-change-every 10
            @($out | Where-Object { $_ -like 'schema extra_*' }).Count | Should -Be 5
            $null = Invoke-Writer exec --db $s.Db --sql 'ALTER TABLE t ADD COLUMN note TEXT; UPDATE t SET note = ''n'' || id WHERE id % 2 = 0; CREATE INDEX t_note ON t(note); DROP TABLE extra_2'

            $result = Complete-Scenario -Replicator $replicator -Database $s.Db -Replica $s.Replica
            $tables = @($result.Restored.Dump.tables.PSObject.Properties.Name)
            $tables | Should -Contain 'extra_5'
            $tables | Should -Not -Contain 'extra_2'
            Invoke-Writer exec --db $result.Restored.Path --sql 'SELECT count(*) FROM sqlite_schema WHERE name = ''t_note''' | Should -Be '1'
        }

        It 'replicates a database with 64 KiB pages' {
            $s = New-Scenario -Name 'page64k'
            $null = New-TestDatabase -Path $s.Db -PageSize 65536 -Rows 5
            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            $out = Invoke-Writer write --db $s.Db --count 300 --rows-per-tx 5 --blob-bytes 3000 --interval-ms 5
            @($out)[-1] | Should -Be 'done 300'

            $result = Complete-Scenario -Replicator $replicator -Database $s.Db -Replica $s.Replica
            Invoke-Writer exec --db $result.Restored.Path --sql 'PRAGMA page_size' | Should -Be '65536'
            $result.Restored.Dump.maxId | Should -Be 305
        }

        It 'replicates a single transaction larger than 10,000 pages' {
            $s = New-Scenario -Name 'bigtx'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            # Checkpoint thresholds are the defaults (PASSIVE at 1000 WAL pages, RESTART at
            # 10000): the one transaction is larger than the RESTART threshold.
            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            $null = Wait-LogLine -Path $s.Log -Pattern 'snapshot written' -TimeoutSeconds 30 -Process $replicator
            $out = Invoke-Writer bigtx --db $s.Db --pages 10500
            @($out)[-1] | Should -Be 'committed 10510'
            $null = Invoke-Writer write --db $s.Db --count 20 --interval-ms 5

            $result = Complete-Scenario -Replicator $replicator -Database $s.Db -Replica $s.Replica
            $result.Restored.Dump.maxId | Should -Be 10530
        }

        It 'starts a new generation when the database file is replaced, and restores the new file' {
            $s = New-Scenario -Name 'replace'
            $null = New-TestDatabase -Path $s.Db -Rows 50
            $other = Join-Path $s.Dir 'other.db'
            $null = New-TestDatabase -Path $other
            $null = Invoke-Writer write --db $other --count 120 --start-id 100001 --rows-per-tx 4
            $null = Invoke-Writer exec --db $other --sql 'CREATE TABLE marker(v TEXT); INSERT INTO marker VALUES (''replacement'')'
            $otherDump = Get-DbDump -Path $other

            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            $first = Wait-LogLine -Path $s.Log -Pattern 'new generation (?<gen>[0-9a-f]{16}) started' -TimeoutSeconds 30 -Process $replicator
            $null = Invoke-Writer write --db $s.Db --count 30 --interval-ms 5
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal segment written' -Offset $first.EndOffset -TimeoutSeconds 30 -Process $replicator

            $null = Invoke-Writer replace --db $s.Db --from $other
            $noticed = Wait-LogLine -Path $s.Log -Pattern 'was replaced by another file' -Offset $first.EndOffset -TimeoutSeconds 30 -Process $replicator
            $second = Wait-LogLine -Path $s.Log -Pattern 'new generation (?<gen>[0-9a-f]{16}) started' -Offset $noticed.EndOffset -TimeoutSeconds 30 -Process $replicator
            $second.Groups['gen'].Value | Should -Not -Be $first.Groups['gen'].Value
            $null = Wait-LogLine -Path $s.Log -Pattern 'snapshot written' -Offset $second.EndOffset -TimeoutSeconds 30 -Process $replicator
            (Get-DbDump -Path $s.Db).digest | Should -Be $otherDump.digest

            $result = Complete-Scenario -Replicator $replicator -Database $s.Db -Replica $s.Replica
            $result.Source.digest | Should -Be $otherDump.digest
            $result.Restored.Result.Generation | Should -Be $second.Groups['gen'].Value
            $result.Restored.Dump.tables.marker | Should -Be 1
            $result.Restored.Dump.maxId | Should -Be 100120
        }
    }

    Context 'One replicator per database, however the database is named' {
        It 'refuses a second replicator with another -MetaPath, and one through a symbolic link, with AlreadyReplicating within seconds; a SIGKILLed first one never blocks the restart' {
            $s = New-Scenario -Name 'onelock'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            $link = Join-Path $s.Dir 'link-to-app.db'
            $null = New-Item -ItemType SymbolicLink -Path $link -Target $s.Db
            $first = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            $null = Wait-LogLine -Path $s.Log -Pattern 'snapshot written' -TimeoutSeconds 30 -Process $first

            $cases = @(
                @{ Name = 'meta'; DatabasePath = $s.Db; Parameters = @{ MetaPath = (Join-Path $s.Dir 'other-meta') } }
                @{ Name = 'link'; DatabasePath = $link; Parameters = @{} }
                @{ Name = 'linkmeta'; DatabasePath = $link; Parameters = @{ MetaPath = (Join-Path $s.Dir 'link-meta') } }
            )
            foreach ($case in $cases) {
                $log = Join-Path $s.Dir "second-$($case.Name).log"
                $replica = Join-Path $s.Dir "replica-$($case.Name)"
                $watch = [System.Diagnostics.Stopwatch]::StartNew()
                $second = Start-TestReplicator -DatabasePath $case.DatabasePath -ReplicaPath $replica -LogPath $log -Parameters $case.Parameters -NoWait
                $second | Wait-TestProcess -TimeoutSeconds 30 | Should -Be 1 -Because (Get-LogTail -Path $log)
                $watch.Elapsed.TotalSeconds | Should -BeLessThan 10 -Because 'the refusal comes at start, before any replication'
                Get-ReplicatorErrorId -LogPath $log | Should -Be 'AlreadyReplicating,SqliteReplica.Commands.StartSqliteReplicationCommand' -Because "case $($case.Name): $(Get-LogTail -Path $log)"
                Get-Content -LiteralPath $log -Raw | Should -Match 'Stop that replicator first'
                Get-ReplicaFile -ReplicaDir $replica | Should -BeNullOrEmpty
                if ($case.Parameters.MetaPath) { Test-Path -LiteralPath $case.Parameters.MetaPath | Should -BeFalse -Because 'a refused replicator writes no meta directory' }
            }
            $first.HasExited | Should -BeFalse

            # kill -9: the kernel drops the lock; a restart (through the link this time) is not blocked.
            $null = Invoke-Writer write --db $s.Db --count 20 --rows-per-tx 2 --interval-ms 5
            $first | Stop-TestProcess -Signal KILL -TimeoutSeconds 10 | Should -Be 137
            $restartLog = Join-Path $s.Dir 'restart.log'
            $restart = Start-TestReplicator -DatabasePath $link -ReplicaPath $s.Replica -LogPath $restartLog -TimeoutSeconds 30
            $null = Invoke-Writer write --db $s.Db --count 20 --rows-per-tx 2 --interval-ms 5
            $result = Complete-Scenario -Replicator $restart -Database $s.Db -Replica $s.Replica
            $result.Restored.Dump.maxId | Should -Be 50
        }

        It 'replicates a database named through a symbolic link; restore and Test-ReplicaRestore take linked paths too' {
            $s = New-Scenario -Name 'linked'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            $link = Join-Path $s.Dir 'current.db'
            $null = New-Item -ItemType SymbolicLink -Path $link -Target $s.Db
            $replicator = Start-TestReplicator -DatabasePath $link -ReplicaPath $s.Replica -LogPath $s.Log
            $null = Invoke-Writer write --db $link --count 40 --rows-per-tx 4 --interval-ms 5
            Get-Content -LiteralPath $s.Log -Raw | Should -Not -Match 'ERRORID'
            Test-Path -LiteralPath (Join-Path $s.Dir '.app.db-litestream') | Should -BeTrue -Because 'the meta directory is beside the file SQLite opens'
            $null = Wait-Until -TimeoutSeconds 30 -Message 'a healthy status read through the link' -Condition { (Get-SqliteReplicationStatus -DatabasePath $link).Healthy }

            $result = Complete-Scenario -Replicator $replicator -Database $s.Db -Replica $s.Replica
            $result.Restored.Dump.maxId | Should -Be 50

            $drill = Test-ReplicaRestore -ReplicaPath $s.Replica -DatabasePath $link -ErrorAction Stop
            $drill.Status | Should -Be 'Passed' -Because $drill.Reason

            # An existing database behind a link: refused without -Force; with -Force the file the
            # link names is replaced and the link stays.
            $other = Join-Path $s.Dir 'other.db'
            $null = New-TestDatabase -Path $other -Rows 3
            $outLink = Join-Path $s.Dir 'restore-link.db'
            $null = New-Item -ItemType SymbolicLink -Path $outLink -Target $other
            { Restore-SqliteReplica -ReplicaPath $s.Replica -OutputPath $outLink -ErrorAction Stop } | Should -Throw -ErrorId 'OutputExists,SqliteReplica.Commands.RestoreSqliteReplicaCommand'
            (Get-DbDump -Path $other).maxId | Should -Be 3
            $restored = Restore-SqliteReplica -ReplicaPath $s.Replica -OutputPath $outLink -Force -ErrorAction Stop
            (Get-Item -LiteralPath $outLink).LinkType | Should -Be 'SymbolicLink'
            $restored.OutputPath | Should -Be $other
            (Get-DbDump -Path $other).digest | Should -Be $result.Source.digest
        }

        It 'refuses a directory given as the database at once with DatabaseUnusable' {
            $s = New-Scenario -Name 'dirdb'
            $directory = Join-Path $s.Dir 'data'
            $null = New-Item -ItemType Directory -Path $directory
            $replicator = Start-TestReplicator -DatabasePath $directory -ReplicaPath $s.Replica -LogPath $s.Log -NoWait
            $replicator | Wait-TestProcess -TimeoutSeconds 30 | Should -Be 1 -Because (Get-LogTail -Path $s.Log)
            Get-ReplicatorErrorId -LogPath $s.Log | Should -Be 'DatabaseUnusable,SqliteReplica.Commands.StartSqliteReplicationCommand'
            Get-Content -LiteralPath $s.Log -Raw | Should -Match 'is a directory, not a database file'
            Get-DirectoryEntry -Path $directory | Should -BeNullOrEmpty
            Test-Path -LiteralPath $s.Replica | Should -BeFalse
        }

        It 'refuses to start with MetaNotWritable, naming what to remove, when its lock file in the meta directory is a directory' {
            $s = New-Scenario -Name 'lockdir'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            $lockDirectory = Join-Path $s.Dir '.app.db-litestream/sqlitereplica.lock'
            $null = New-Item -ItemType Directory -Path (Join-Path $lockDirectory 'keep')
            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log -NoWait
            $replicator | Wait-TestProcess -TimeoutSeconds 30 | Should -Be 1 -Because (Get-LogTail -Path $s.Log)
            Get-ReplicatorErrorId -LogPath $s.Log | Should -Be 'MetaNotWritable,SqliteReplica.Commands.StartSqliteReplicationCommand'
            Get-Content -LiteralPath $s.Log -Raw | Should -Match ([regex]::Escape($lockDirectory))
            Get-Content -LiteralPath $s.Log -Raw | Should -Match 'Remove that directory'
            Test-Path -LiteralPath (Join-Path $lockDirectory 'keep') | Should -BeTrue -Because 'nothing is deleted for the user'
            (Get-DbDump -Path $s.Db).maxId | Should -Be 10

            # Once it is removed, the replicator starts.
            Remove-Item -LiteralPath $lockDirectory -Recurse -Force
            $again = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath (Join-Path $s.Dir 'again.log')
            $null = Invoke-Writer write --db $s.Db --count 10 --rows-per-tx 2 --interval-ms 5
            (Complete-Scenario -Replicator $again -Database $s.Db -Replica $s.Replica).Restored.Dump.maxId | Should -Be 20
        }
    }

    Context 'Start-up and failures' {
        It 'waits for a database that does not exist yet' {
            $s = New-Scenario -Name 'later'
            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            $null = Wait-LogLine -Path $s.Log -Pattern 'waiting for database' -TimeoutSeconds 30 -Process $replicator
            $replicator.HasExited | Should -BeFalse

            $null = New-TestDatabase -Path $s.Db -Rows 40
            $null = Wait-LogLine -Path $s.Log -Pattern 'new generation [0-9a-f]{16} started' -TimeoutSeconds 30 -Process $replicator
            $null = Invoke-Writer write --db $s.Db --count 60 --rows-per-tx 3 --interval-ms 5

            $result = Complete-Scenario -Replicator $replicator -Database $s.Db -Replica $s.Replica
            $result.Restored.Dump.maxId | Should -Be 100
        }

        It 'switches a rollback-journal database to WAL and replicates it' {
            $s = New-Scenario -Name 'journal'
            $init = Invoke-Writer init --db $s.Db --journal delete
            $init | Should -Match 'journal=delete'
            $null = Invoke-Writer write --db $s.Db --count 30
            Invoke-Writer exec --db $s.Db --sql 'PRAGMA journal_mode' | Should -Be 'delete'

            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            $null = Wait-LogLine -Path $s.Log -Pattern 'snapshot written' -TimeoutSeconds 30 -Process $replicator
            Invoke-Writer exec --db $s.Db --sql 'PRAGMA journal_mode' | Should -Be 'wal'
            $null = Invoke-Writer write --db $s.Db --count 50 --rows-per-tx 5 --interval-ms 5

            $result = Complete-Scenario -Replicator $replicator -Database $s.Db -Replica $s.Replica
            $result.Restored.Dump.maxId | Should -Be 80
        }

        It 'fails with ReplicaNotWritable and exits non-zero quickly when the replica is on a read-only file system' -Skip:(-not $script:IsRoot) {
            $s = New-Scenario -Name 'readonly'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            $readOnly = New-TmpfsMount -ReadOnly -Path (Join-Path $s.Dir 'ro')
            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath (Join-Path $readOnly 'replica') -LogPath $s.Log -NoWait

            $replicator | Wait-TestProcess -TimeoutSeconds 30 | Should -Not -Be 0
            Get-ReplicatorErrorId -LogPath $s.Log | Should -Be 'ReplicaNotWritable,SqliteReplica.Commands.StartSqliteReplicationCommand'
            Get-DirectoryEntry -Path $readOnly | Should -BeNullOrEmpty
            (Get-DbDump -Path $s.Db).maxId | Should -Be 10
        }

        It 'refuses a second replicator on the same database with AlreadyReplicating while the first keeps running' {
            $s = New-Scenario -Name 'twice'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            $first = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            $null = Wait-LogLine -Path $s.Log -Pattern 'snapshot written' -TimeoutSeconds 30 -Process $first

            $secondLog = Join-Path $s.Dir 'second.log'
            $second = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath (Join-Path $s.Dir 'replica2') -LogPath $secondLog -NoWait
            $second | Wait-TestProcess -TimeoutSeconds 60 | Should -Not -Be 0
            Get-ReplicatorErrorId -LogPath $secondLog | Should -Be 'AlreadyReplicating,SqliteReplica.Commands.StartSqliteReplicationCommand'
            Get-ReplicaFile -ReplicaDir (Join-Path $s.Dir 'replica2') | Should -BeNullOrEmpty

            $first.HasExited | Should -BeFalse
            $null = Invoke-Writer write --db $s.Db --count 40 --rows-per-tx 2 --interval-ms 5
            $result = Complete-Scenario -Replicator $first -Database $s.Db -Replica $s.Replica
            $result.Restored.Dump.maxId | Should -Be 50
        }

        It 'resumes its generation when restarted while the application keeps the database open' {
            $s = New-Scenario -Name 'restart'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            # The application does not checkpoint by itself: between the two runs nobody holds the
            # WAL, and on a loaded machine the second pwsh can take long enough to start for the
            # writer's own autocheckpoint to restart the WAL in that gap. That loses frames nobody
            # copied and rightly starts a new generation (the xunit test
            # A_wal_restarted_while_nobody_captured_starts_a_new_generation_and_restores_equal);
            # it is not what this test is about.
            $writer = Start-Writer write --db $s.Db --count 0 --interval-ms 20 --rows-per-tx 2 --blob-bytes 1000 --autocheckpoint 0 -StdoutPath (Join-Path $s.Dir 'writer.out')
            # A low PASSIVE threshold, so that both runs restart the WAL a few times.
            $parameters = @{ MinCheckpointPageCount = 20 }
            $first = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log -Parameters $parameters
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal restarted: new index' -TimeoutSeconds 30 -Process $first
            $first | Stop-TestReplicator | Should -Be 0

            $secondLog = Join-Path $s.Dir 'second.log'
            $second = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $secondLog -Parameters $parameters
            $resumed = Wait-LogLine -Path $secondLog -Pattern 'resuming generation|new generation' -TimeoutSeconds 30 -Process $second
            $null = Wait-LogLine -Path $secondLog -Pattern 'wal restarted: new index|new generation .* started' -Offset $resumed.EndOffset -Count 2 -TimeoutSeconds 30 -Process $second
            # What the second run logged while the application still had the database open: that
            # is what this test judges. What follows the application's close is printed below, not
            # judged (it is not what this test is about). Its rare CI failure ("wal restarted more
            # than once") was a commit landing in the instant the managed checkpoint let its read
            # go to take the write lock; the xunit test
            # A_wal_restart_made_while_the_checkpoint_reaches_for_the_write_lock_is_followed_without_a_new_generation
            # makes that instant happen every time.
            $whileOpen = [System.Text.Encoding]::UTF8.GetString([System.IO.File]::ReadAllBytes($secondLog))
            $writer | Stop-TestProcess -Signal TERM -TimeoutSeconds 30 -NoKill | Should -Be 0

            $result = Complete-Scenario -Replicator $second -Database $s.Db -Replica $s.Replica
            $resumed.Line | Should -Match 'resuming generation'
            # The WAL restarts of the second run are made by connections whose checkpoint
            # counters differ from the first run's: continuity still holds, no new generation.
            # On failure the message carries the second run's log on one line: the summary a CI log
            # keeps is that line.
            $logLine = ($whileOpen -split '\r?\n' | Where-Object { $_ }) -join ' | '
            $whileOpen -split '\r?\n' | Where-Object { $_ -match 'new generation' } | Should -BeNullOrEmpty -Because "the second run logged: $logLine"
            @(Get-ReplicaGeneration -ReplicaPath $s.Replica | Where-Object { $_.Generation -eq $resumed.Line.Split(' ')[3] }).Count | Should -Be 1
            # After the application closed: logged, not judged (see above).
            $after = [System.Text.Encoding]::UTF8.GetString([System.IO.File]::ReadAllBytes($secondLog)).Substring($whileOpen.Length)
            if ($after -match 'new generation') { Write-Host "note: the second run started a new generation after the application closed: $((($after -split '\r?\n') | Where-Object { $_ }) -join ' | ')" }
        }

        It 'resumes its generation when restarted after the application closed the database first (as a unit ordered before the application stops)' {
            $s = New-Scenario -Name 'restart-after-app'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            $first = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log
            $null = Wait-LogLine -Path $s.Log -Pattern 'new generation' -TimeoutSeconds 30 -Process $first
            # The application writes and closes while the replicator runs; the replicator's close is
            # then the last one: SQLite checkpoints the WAL and, as the replicator's connection
            # asks, keeps the file, so the next run can prove where the generation stopped.
            $null = Invoke-Writer write --db $s.Db --count 20 --interval-ms 5
            $first | Stop-TestReplicator | Should -Be 0
            Get-Item -LiteralPath "$($s.Db)-wal" | Should -Not -BeNullOrEmpty
            $generation = @(Get-ReplicaGeneration -ReplicaPath $s.Replica)
            $generation.Count | Should -Be 1

            $secondLog = Join-Path $s.Dir 'second.log'
            $second = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $secondLog
            $resumed = Wait-LogLine -Path $secondLog -Pattern 'resuming generation|new generation' -TimeoutSeconds 30 -Process $second
            $resumed.Line | Should -Match "resuming generation $($generation[0].Generation)" -Because (Get-LogTail -Path $secondLog)
            $null = Invoke-Writer write --db $s.Db --count 10
            $result = Complete-Scenario -Replicator $second -Database $s.Db -Replica $s.Replica
            $result.Restored.Dump.maxId | Should -Be 40
            @(Get-ReplicaGeneration -ReplicaPath $s.Replica).Generation | Should -Be $generation[0].Generation
        }

        It 'gets a commit into the replica within a few seconds with -SyncInterval 200ms' {
            $s = New-Scenario -Name 'syncinterval'
            $null = New-TestDatabase -Path $s.Db -Rows 10
            # The monitor keeps its 1 s default: the commit must get through by itself.
            $replicator = Start-TestReplicator -DatabasePath $s.Db -ReplicaPath $s.Replica -LogPath $s.Log -Parameters @{ SyncInterval = '200ms'; MonitorInterval = '1s' }
            $null = Wait-LogLine -Path $s.Log -Pattern 'wal segment written' -TimeoutSeconds 30 -Process $replicator
            Wait-Until { @(Get-ReplicaWalSegment -ReplicaPath $s.Replica).Count -ge 1 } -TimeoutSeconds 10 -Message 'the first segment' | Out-Null
            $before = @(Get-ReplicaWalSegment -ReplicaPath $s.Replica)

            $null = Invoke-Writer write --db $s.Db --count 1
            Wait-Until { @(Get-ReplicaWalSegment -ReplicaPath $s.Replica).Count -gt $before.Count } -TimeoutSeconds 5 -IntervalMilliseconds 50 `
                -Message 'a new WAL segment holding the commit' | Out-Null

            $live = Restore-Fresh -Replica $s.Replica
            $live.Dump.maxId | Should -Be 11
            $replicator | Stop-TestReplicator | Should -Be 0
        }
    }
}
