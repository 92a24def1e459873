#Requires -Version 7.6
# Compatibility with the real Litestream v0.3.13 in both directions: replicas written by
# Start-SqliteReplication restore with `litestream restore`, and replicas written by
# `litestream replicate` restore with Restore-SqliteReplica, to the same content for the same
# selection (latest, index, timestamp, generation). Run through `build.ps1 Test`, which sets
# SQLITEREPLICA_MODULE, SQLITEREPLICA_WRITER and SQLITEREPLICA_LITESTREAM.

Describe 'Compatibility with Litestream v0.3.13' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'IntegrationHelpers.psm1') -Force
        Import-Module -Name $env:SQLITEREPLICA_MODULE -Force -ErrorAction Stop

        $version = Invoke-Litestream -- version
        $version.Output.Trim() | Should -Be 'v0.3.13'

        # Restores one selection with both tools into fresh files and returns both dumps.
        # -Litestream holds the CLI flags, -Ours the matching Restore-SqliteReplica parameters.
        function Restore-BothWays {
            param(
                [Parameter(Mandatory)][string]$Replica,
                [string[]]$Litestream = @(),
                [hashtable]$Ours = @{}
            )
            $url = 'file://' + $Replica
            $theirsPath = New-RestoreTarget -Parent $TestDrive
            $run = Invoke-Litestream -- restore -o $theirsPath @Litestream $url
            $run.ExitCode | Should -Be 0 -Because "litestream restore $($Litestream -join ' ') must succeed: $($run.Output)"
            $oursPath = New-RestoreTarget -Parent $TestDrive
            $result = Restore-SqliteReplica -ReplicaUrl $url -OutputPath $oursPath @Ours -ErrorAction Stop
            $theirDump = Get-DbDump -Path $theirsPath
            $ourDump = Get-DbDump -Path $oursPath
            $theirDump.integrity | Should -Be 'ok'
            $ourDump.integrity | Should -Be 'ok'
            [pscustomobject]@{ Theirs = $theirDump; Ours = $ourDump; Result = $result; LitestreamOutput = $run.Output }
        }

        # Writes one batch with the writer process (ids continue from the last one).
        function Write-Batch {
            param([Parameter(Mandatory)][string]$Database, [int]$Count = 120)
            $out = Invoke-Writer write --db $Database --count $Count --rows-per-tx 3 --blob-bytes 1000 --interval-ms 5
            @($out)[-1] | Should -Be "done $Count"
        }

        # Litestream v0.3.13 sometimes panics while it shuts down ('assertion failed: generation
        # name required', exit 2): let it upload everything first, and do not judge its exit code.
        function Stop-Litestream {
            param([Parameter(Mandatory)]$Process, [Parameter(Mandatory)][string]$ReplicaDir)
            Wait-ReplicaQuiet -ReplicaDir $ReplicaDir
            $code = $Process | Stop-LitestreamReplicate -TimeoutSeconds 30
            if ($code -ne 0) { Write-Host "    litestream replicate exited $code on SIGTERM: $((Select-String -LiteralPath $Process.LogPath -Pattern '^panic:' | Select-Object -First 1).Line)" }
        }

        # For each generation whose files have a pause of more than MinimumGap inside: the
        # middle of its longest pause (a -Timestamp that every implementation reads alike).
        function Find-QuietSpell {
            param([Parameter(Mandatory)][object[]]$Files, [double]$MinimumGap = 0.5)
            foreach ($group in ($Files | Group-Object -Property Generation)) {
                if ($group.Count -lt 2) { continue }
                $gap = Get-GapMidpoint -Files $group.Group
                if ($gap.Gap.TotalSeconds -gt $MinimumGap) {
                    [pscustomobject]@{ Generation = $group.Name; Time = $gap.Time; Gap = $gap.Gap }
                }
            }
        }

        # The first WAL index (of any generation) whose restore holds fewer rows than the
        # whole generation: a selection -Index really has to cut.
        function Find-IndexBeforeRows {
            param([Parameter(Mandatory)][string]$Replica, [Parameter(Mandatory)][object[]]$Files, [string]$Generation)
            foreach ($group in ($Files | Where-Object { $_.Kind -eq 'wal' -and (-not $Generation -or $_.Generation -eq $Generation) } | Group-Object -Property Generation)) {
                $indexes = @($group.Group.Index | Sort-Object -Unique)
                if ($indexes.Count -lt 2) { continue }
                $full = New-RestoreTarget -Parent $TestDrive
                $null = Restore-SqliteReplica -ReplicaPath $Replica -OutputPath $full -Generation $group.Name -ErrorAction Stop
                $fullMax = (Get-DbDump -Path $full).maxId
                foreach ($index in $indexes[0..($indexes.Count - 2)]) {
                    $cut = New-RestoreTarget -Parent $TestDrive
                    $null = Restore-SqliteReplica -ReplicaPath $Replica -OutputPath $cut -Generation $group.Name -Index $index -ErrorAction Stop
                    $cutMax = (Get-DbDump -Path $cut).maxId
                    if ($cutMax -lt $fullMax) {
                        return [pscustomobject]@{ Generation = $group.Name; Index = $index; MaxId = $cutMax; GenerationMaxId = $fullMax }
                    }
                }
            }
        }

        # A quiet spell between batches, so that a -Timestamp can fall clearly between two
        # replica files whatever the tools' timestamp resolution (not a pass/fail timing).
        function Wait-QuietSpell { Start-Sleep -Milliseconds 1500 }
    }

    AfterAll {
        Stop-TestProcess -All -Signal KILL -TimeoutSeconds 5
        Remove-Module -Name SqliteReplica -Force -ErrorAction Ignore
    }

    Context 'A replica written by Start-SqliteReplication, restored by litestream' {
        BeforeAll {
            $dir = Join-Path $TestDrive 'ours'
            $null = New-Item -ItemType Directory -Path $dir
            $script:OurDb = Join-Path $dir 'app.db'
            $script:OurReplica = Join-Path $dir 'replica'
            $null = New-TestDatabase -Path $script:OurDb -Rows 20
            # A low PASSIVE threshold: several WAL indexes per generation.
            $parameters = @{ MinCheckpointPageCount = 40 }

            $first = Start-TestReplicator -DatabasePath $script:OurDb -ReplicaPath $script:OurReplica -Parameters $parameters -LogPath (Join-Path $dir 'first.log')
            $null = Wait-LogLine -Path $first.LogPath -Pattern 'snapshot written' -TimeoutSeconds 30 -Process $first
            Write-Batch -Database $script:OurDb
            Wait-QuietSpell
            Write-Batch -Database $script:OurDb
            $first | Stop-TestReplicator | Should -Be 0

            # Without a replicator, the writer's connection is the last one: closing it
            # checkpoints and deletes the WAL, so continuity is lost and a new generation follows.
            Write-Batch -Database $script:OurDb -Count 30
            Test-Path -LiteralPath "$($script:OurDb)-wal" | Should -BeFalse

            $second = Start-TestReplicator -DatabasePath $script:OurDb -ReplicaPath $script:OurReplica -Parameters $parameters -LogPath (Join-Path $dir 'second.log')
            $null = Wait-LogLine -Path $second.LogPath -Pattern 'new generation [0-9a-f]{16} started' -TimeoutSeconds 30 -Process $second
            $null = Wait-LogLine -Path $second.LogPath -Pattern 'snapshot written' -TimeoutSeconds 30 -Process $second
            Write-Batch -Database $script:OurDb
            Wait-QuietSpell
            Write-Batch -Database $script:OurDb
            $second | Stop-TestReplicator | Should -Be 0

            $script:OurSource = Get-DbDump -Path $script:OurDb
            $script:OurFiles = @(Get-ReplicaFile -ReplicaDir $script:OurReplica)
            $script:OurGenerations = @(Get-ReplicaGeneration -ReplicaPath $script:OurReplica | Sort-Object -Property UpdatedAt)
        }

        It 'has several WAL indexes and at least two generations' {
            $script:OurGenerations.Count | Should -BeGreaterOrEqual 2
            @($script:OurFiles | Where-Object Kind -eq 'wal' | Select-Object -Property Generation, Index -Unique).Count | Should -BeGreaterOrEqual 4
        }

        It 'restores the latest state with litestream restore, equal to the source and to Restore-SqliteReplica' {
            $both = Restore-BothWays -Replica $script:OurReplica
            $both.Theirs.digest | Should -Be $script:OurSource.digest -Because $both.LitestreamOutput
            $both.Ours.digest | Should -Be $script:OurSource.digest
            $both.Result.Generation | Should -Be $script:OurGenerations[-1].Generation
        }

        It 'restores with litestream restore -index HEX as Restore-SqliteReplica -Index does' {
            # An index of a generation after which more rows were committed in that generation
            # (the last index may hold only the replicator's own sequence write).
            $choice = Find-IndexBeforeRows -Replica $script:OurReplica -Files $script:OurFiles
            $choice | Should -Not -BeNullOrEmpty -Because 'some generation must have rows after one of its indexes'
            Write-Host "    -index: generation $($choice.Generation), index $($choice.Index) (max id $($choice.MaxId) of $($choice.GenerationMaxId))"
            $both = Restore-BothWays -Replica $script:OurReplica -Litestream @('-generation', $choice.Generation, '-index', ('{0:x8}' -f $choice.Index)) -Ours @{ Generation = $choice.Generation; Index = $choice.Index }
            $both.Ours.digest | Should -Be $both.Theirs.digest -Because $both.LitestreamOutput
            $both.Result.Index | Should -Be $choice.Index
            $both.Ours.maxId | Should -BeLessThan $choice.GenerationMaxId
        }

        It 'restores with litestream restore -index alone (latest generation) as Restore-SqliteReplica -Index does' {
            $latest = $script:OurGenerations[-1].Generation
            $index = @($script:OurFiles | Where-Object { $_.Generation -eq $latest -and $_.Kind -eq 'wal' } | ForEach-Object Index | Sort-Object -Unique)[0]
            $both = Restore-BothWays -Replica $script:OurReplica -Litestream @('-index', ('{0:x8}' -f $index)) -Ours @{ Index = $index }
            $both.Ours.digest | Should -Be $both.Theirs.digest -Because $both.LitestreamOutput
            $both.Result.Generation | Should -Be $latest
        }

        It 'restores with litestream restore -timestamp (RFC 3339) as Restore-SqliteReplica -Timestamp does, in each generation with a quiet spell' {
            $gaps = @(Find-QuietSpell -Files $script:OurFiles)
            $gaps.Count | Should -BeGreaterOrEqual 1 -Because 'the writer paused between batches'
            foreach ($gap in $gaps) {
                $stamp = Format-RfcTimestamp $gap.Time
                Write-Host "    -timestamp: $stamp (generation $($gap.Generation), quiet for $([int]$gap.Gap.TotalMilliseconds) ms)"
                $both = Restore-BothWays -Replica $script:OurReplica -Litestream @('-timestamp', $stamp) -Ours @{ Timestamp = $gap.Time }
                $both.Ours.digest | Should -Be $both.Theirs.digest -Because "at ${stamp}: $($both.LitestreamOutput)"
                $both.Result.Generation | Should -Be $gap.Generation
                $both.Result.RestoredTo | Should -BeLessOrEqual $gap.Time
                $both.Ours.maxId | Should -BeLessThan $script:OurSource.maxId
            }
        }
    }

    Context 'A replica written by litestream replicate, restored by Restore-SqliteReplica' {
        BeforeAll {
            $dir = Join-Path $TestDrive 'theirs'
            $null = New-Item -ItemType Directory -Path $dir
            $script:TheirDb = Join-Path $dir 'app.db'
            $script:TheirReplica = Join-Path $dir 'replica'
            $null = New-TestDatabase -Path $script:TheirDb -Rows 20
            $settings = @{ DbPath = $script:TheirDb; ReplicaDir = $script:TheirReplica; MinCheckpointPageCount = 40; SyncInterval = '200ms' }

            $first = Start-LitestreamReplicate @settings -WorkDirectory (Join-Path $dir 'ls1')
            $null = Wait-LogLine -Path $first.LogPath -Pattern 'snapshot written' -TimeoutSeconds 30 -Process $first
            Write-Batch -Database $script:TheirDb
            Wait-QuietSpell
            Write-Batch -Database $script:TheirDb
            Stop-Litestream -Process $first -ReplicaDir $script:TheirReplica

            Write-Batch -Database $script:TheirDb -Count 30
            Test-Path -LiteralPath "$($script:TheirDb)-wal" | Should -BeFalse

            $second = Start-LitestreamReplicate @settings -WorkDirectory (Join-Path $dir 'ls2')
            $null = Wait-LogLine -Path $second.LogPath -Pattern 'new generation' -TimeoutSeconds 30 -Process $second
            $null = Wait-LogLine -Path $second.LogPath -Pattern 'snapshot written' -TimeoutSeconds 30 -Process $second
            Write-Batch -Database $script:TheirDb
            Wait-QuietSpell
            Write-Batch -Database $script:TheirDb
            Stop-Litestream -Process $second -ReplicaDir $script:TheirReplica

            $script:TheirSource = Get-DbDump -Path $script:TheirDb
            $script:TheirFiles = @(Get-ReplicaFile -ReplicaDir $script:TheirReplica)
            $script:TheirGenerations = @(Get-ReplicaGeneration -ReplicaPath $script:TheirReplica | Sort-Object -Property UpdatedAt)
        }

        It 'has several WAL indexes and two generations' {
            $script:TheirGenerations.Count | Should -Be 2
            @($script:TheirFiles | Where-Object { $_.Kind -eq 'wal' -and $_.Generation -eq $script:TheirGenerations[-1].Generation } | ForEach-Object Index | Sort-Object -Unique).Count | Should -BeGreaterOrEqual 2
        }

        It 'restores the latest state like litestream restore, equal to the source' {
            $both = Restore-BothWays -Replica $script:TheirReplica
            $both.Ours.digest | Should -Be $both.Theirs.digest
            $both.Ours.digest | Should -Be $script:TheirSource.digest
            $both.Result.Generation | Should -Be $script:TheirGenerations[-1].Generation
        }

        It 'restores -Index like litestream restore -index' {
            $latest = $script:TheirGenerations[-1].Generation
            $choice = Find-IndexBeforeRows -Replica $script:TheirReplica -Files $script:TheirFiles -Generation $latest
            $choice | Should -Not -BeNullOrEmpty -Because 'the latest generation has rows after its first index'
            # No -generation: the CLI fills in the latest one, as Restore-SqliteReplica does.
            $both = Restore-BothWays -Replica $script:TheirReplica -Litestream @('-index', ('{0:x8}' -f $choice.Index)) -Ours @{ Index = $choice.Index }
            $both.Ours.digest | Should -Be $both.Theirs.digest -Because $both.LitestreamOutput
            $both.Result.Generation | Should -Be $latest
            $both.Result.Index | Should -Be $choice.Index
            $both.Ours.maxId | Should -BeLessThan $script:TheirSource.maxId
        }

        It 'restores -Timestamp like litestream restore -timestamp, in each generation' {
            $gaps = @(Find-QuietSpell -Files $script:TheirFiles)
            @($gaps.Generation | Sort-Object -Unique).Count | Should -Be 2
            foreach ($gap in $gaps) {
                $stamp = Format-RfcTimestamp $gap.Time
                $both = Restore-BothWays -Replica $script:TheirReplica -Litestream @('-timestamp', $stamp) -Ours @{ Timestamp = $gap.Time }
                $both.Ours.digest | Should -Be $both.Theirs.digest -Because "at ${stamp}: $($both.LitestreamOutput)"
                $both.Result.Generation | Should -Be $gap.Generation
                $both.Result.RestoredTo | Should -BeLessOrEqual $gap.Time
                $both.Ours.maxId | Should -BeLessThan $script:TheirSource.maxId
            }
        }

        It 'restores -Generation like litestream restore -generation' {
            $older = $script:TheirGenerations[0].Generation
            $both = Restore-BothWays -Replica $script:TheirReplica -Litestream @('-generation', $older) -Ours @{ Generation = $older }
            $both.Ours.digest | Should -Be $both.Theirs.digest -Because $both.LitestreamOutput
            $both.Result.Generation | Should -Be $older
            $both.Ours.maxId | Should -BeLessThan $script:TheirSource.maxId
        }
    }
}
