#Requires -Version 7.6
# Restore-SqliteReplica on damaged replicas and awkward outputs: every failure has its stable
# error id and leaves nothing behind; the provisioning switches, -WhatIf, -AllowPartial,
# pipeline input from Get-ReplicaSnapshot and the -Timestamp / -Index forms do what they say.
# One replica is made once by Start-SqliteReplication (separate process, writer process);
# each test damages its own copy. Run through `build.ps1 Test` (SQLITEREPLICA_MODULE,
# SQLITEREPLICA_WRITER, SQLITEREPLICA_LITESTREAM).

BeforeDiscovery {
    $script:IsRoot = (& id -u) -eq '0'
}

Describe 'Restore-SqliteReplica errors and options' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'IntegrationHelpers.psm1') -Force
        Import-Module -Name $env:SQLITEREPLICA_MODULE -Force -ErrorAction Stop

        $script:CommandId = 'SqliteReplica.Commands.RestoreSqliteReplicaCommand'

        # The fixture: two batches with a quiet spell between them, several WAL indexes,
        # and a database of about 1 MiB (larger than the small tmpfs below).
        $fixtureDir = Join-Path $TestDrive 'fixture'
        $null = New-Item -ItemType Directory -Path $fixtureDir
        $db = Join-Path $fixtureDir 'app.db'
        $script:Fixture = Join-Path $fixtureDir 'replica'
        $null = New-TestDatabase -Path $db -Rows 20
        $replicator = Start-TestReplicator -DatabasePath $db -ReplicaPath $script:Fixture -Parameters @{ MinCheckpointPageCount = 60 } -LogPath (Join-Path $fixtureDir 'replicator.log')
        $null = Wait-LogLine -Path $replicator.LogPath -Pattern 'snapshot written' -TimeoutSeconds 30 -Process $replicator
        $null = Invoke-Writer write --db $db --count 240 --rows-per-tx 4 --blob-bytes 2000 --interval-ms 5
        Start-Sleep -Milliseconds 1500   # a quiet spell for the -Timestamp tests (not a timing check)
        $null = Invoke-Writer write --db $db --count 240 --rows-per-tx 4 --blob-bytes 2000 --interval-ms 5
        $replicator | Stop-TestReplicator | Should -Be 0
        $script:Source = Get-DbDump -Path $db
        (Get-Item -LiteralPath $db).Length | Should -BeGreaterThan 512KB

        # The generation with the most WAL segments is the one every damage test works on.
        $segments = @(Get-ReplicaWalSegment -ReplicaPath $script:Fixture)
        $script:Generation = ($segments | Group-Object -Property Generation | Sort-Object -Property Count -Descending | Select-Object -First 1).Name
        $script:Segments = @(Get-ReplicaFile -ReplicaDir $script:Fixture -Generation $script:Generation -Kind wal)
        $script:Segments.Count | Should -BeGreaterOrEqual 4
        $full = New-RestoreTarget -Parent $TestDrive
        $script:GenerationResult = Restore-SqliteReplica -ReplicaPath $script:Fixture -Generation $script:Generation -OutputPath $full -ErrorAction Stop
        $script:GenerationDump = Get-DbDump -Path $full

        # Segments strictly inside the chain (neither the first nor the last one), biggest first.
        $script:Inner = @($script:Segments[1..($script:Segments.Count - 2)] | Sort-Object -Property Length -Descending)
        # A segment followed by another one of the same WAL index: without it the offsets of
        # that index no longer join up (or its offset 0 is missing). Offset > 0 preferred.
        $script:GapVictim = @($script:Segments | Where-Object {
                $segment = $_
                @($script:Segments | Where-Object { $_.Index -eq $segment.Index -and $_.Offset -gt $segment.Offset }).Count -gt 0
            } | Sort-Object -Property @{ Expression = { $_.Offset -gt 0 }; Descending = $true }, @{ Expression = 'Length'; Descending = $true })[0]
        # The last segment (offset > 0) of a WAL index that is not the generation's last one:
        # nothing in the names shows that it is gone.
        $maxIndex = ($script:Segments | Measure-Object -Property Index -Maximum).Maximum
        $script:TailVictim = @($script:Segments | Where-Object {
                $segment = $_
                $segment.Index -lt $maxIndex -and $segment.Offset -gt 0 -and
                @($script:Segments | Where-Object { $_.Index -eq $segment.Index -and $_.Offset -gt $segment.Offset }).Count -eq 0
            } | Sort-Object -Property Length -Descending)[0]

        function New-Case {
            param([Parameter(Mandatory)][string]$Name)
            $dir = Join-Path $TestDrive $Name
            $replica = Copy-ReplicaDirectory -Source $script:Fixture -Destination (Join-Path $dir 'replica')
            $outDir = Join-Path $dir 'out'
            $null = New-Item -ItemType Directory -Path $outDir
            [pscustomobject]@{ Replica = $replica; OutDir = $outDir; Output = Join-Path $outDir 'restored.db' }
        }

        # The same replica file in a copy.
        function Get-CopyPath {
            param([Parameter(Mandatory)]$Case, [Parameter(Mandatory)]$File)
            Join-Path $Case.Replica ([System.IO.Path]::GetRelativePath($script:Fixture, $File.Path))
        }

        # Runs a restore that must fail; returns the error record (terminating or not).
        function Get-RestoreError {
            param([Parameter(Mandatory)][hashtable]$Parameters)
            $record = $null
            $output = $null
            try {
                $output = Restore-SqliteReplica @Parameters -ErrorAction Stop
            }
            catch {
                $record = $_
            }
            $output | Should -BeNullOrEmpty
            $record | Should -Not -BeNullOrEmpty -Because 'the restore must fail'
            $record
        }
    }

    AfterAll {
        Stop-TestProcess -All -Signal KILL -TimeoutSeconds 5
        Remove-TmpfsMount -All
        Remove-Module -Name SqliteReplica -Force -ErrorAction Ignore
    }

    Context 'Damaged replicas' {
        It 'fails with SegmentMissing when a WAL segment inside the chain is missing, and writes nothing' {
            $case = New-Case -Name 'missing-segment'
            $script:GapVictim | Should -Not -BeNullOrEmpty -Because 'some WAL index of the fixture has two segments'
            Remove-Item -LiteralPath (Get-CopyPath $case $script:GapVictim)
            $record = Get-RestoreError @{ ReplicaPath = $case.Replica; Generation = $script:Generation; OutputPath = $case.Output }
            $record.FullyQualifiedErrorId | Should -Be "SegmentMissing,$script:CommandId"
            Get-DirectoryEntry -Path $case.OutDir | Should -BeNullOrEmpty
        }

        It 'never reports success for a damaged database when the last segment of a WAL index is missing' {
            # The names cannot show this gap (the next index starts at offset 0 anyway), so the
            # restore must either notice it (SegmentMissing, SegmentCorrupt, or the quick_check of
            # the rebuilt file: RestoredDatabaseCorrupt; nothing written) or hand out a database
            # that passes integrity_check.
            $case = New-Case -Name 'missing-tail-segment'
            $script:TailVictim | Should -Not -BeNullOrEmpty -Because 'the fixture has a WAL index with two segments below its last index'
            Remove-Item -LiteralPath (Get-CopyPath $case $script:TailVictim)
            $record = $null
            $result = $null
            try {
                $result = Restore-SqliteReplica -ReplicaPath $case.Replica -Generation $script:Generation -OutputPath $case.Output -ErrorAction Stop
            }
            catch {
                $record = $_
            }
            if ($record) {
                $record.FullyQualifiedErrorId | Should -BeIn @("SegmentMissing,$script:CommandId", "SegmentCorrupt,$script:CommandId", "RestoredDatabaseCorrupt,$script:CommandId")
                Get-DirectoryEntry -Path $case.OutDir | Should -BeNullOrEmpty
            }
            else {
                $integrity = try {
                    (Invoke-Writer exec --db $case.Output --sql 'PRAGMA integrity_check' | Select-Object -First 3) -join '; '
                }
                catch {
                    'unreadable: ' + (($_.Exception.Message -split "`r?`n" | Select-Object -First 3) -join ' ')
                }
                $integrity | Should -Be 'ok' -Because "restore reported success ($($result.Position)) without segment $($script:TailVictim.Name)"
            }
        }

        It 'fails with SegmentCorrupt when a WAL segment is truncated, and writes nothing' {
            $case = New-Case -Name 'truncated-segment'
            $victim = $script:Inner[0]
            $path = Get-CopyPath $case $victim
            $stream = [System.IO.File]::Open($path, 'Open', 'ReadWrite')
            try { $stream.SetLength([long]($victim.Length / 2)) } finally { $stream.Dispose() }
            $record = Get-RestoreError @{ ReplicaPath = $case.Replica; Generation = $script:Generation; OutputPath = $case.Output }
            $record.FullyQualifiedErrorId | Should -Be "SegmentCorrupt,$script:CommandId"
            Get-DirectoryEntry -Path $case.OutDir | Should -BeNullOrEmpty
        }

        It 'fails with SegmentCorrupt when one byte of a WAL segment is flipped, and writes nothing' {
            $case = New-Case -Name 'flipped-byte'
            $victim = $script:Inner[0]
            $path = Get-CopyPath $case $victim
            $bytes = [System.IO.File]::ReadAllBytes($path)
            $at = [int]($bytes.Length / 2)
            $bytes[$at] = $bytes[$at] -bxor 0xFF
            [System.IO.File]::WriteAllBytes($path, $bytes)
            $record = Get-RestoreError @{ ReplicaPath = $case.Replica; Generation = $script:Generation; OutputPath = $case.Output }
            $record.FullyQualifiedErrorId | Should -Be "SegmentCorrupt,$script:CommandId"
            Get-DirectoryEntry -Path $case.OutDir | Should -BeNullOrEmpty
        }

        It 'fails with SnapshotMissing when the generation has no snapshot left, and writes nothing' {
            $case = New-Case -Name 'missing-snapshot'
            Get-ReplicaFile -ReplicaDir $case.Replica -Generation $script:Generation -Kind snapshot | ForEach-Object { Remove-Item -LiteralPath $_.Path }
            $record = Get-RestoreError @{ ReplicaPath = $case.Replica; Generation = $script:Generation; OutputPath = $case.Output }
            $record.FullyQualifiedErrorId | Should -Be "SnapshotMissing,$script:CommandId"
            Get-DirectoryEntry -Path $case.OutDir | Should -BeNullOrEmpty
        }

        It 'with -AllowPartial restores the last consistent point before a damaged segment, with Partial and a warning' {
            $case = New-Case -Name 'partial'
            $victim = $script:Inner[0]
            $path = Get-CopyPath $case $victim
            $bytes = [System.IO.File]::ReadAllBytes($path)
            $at = [int]($bytes.Length / 2)
            $bytes[$at] = $bytes[$at] -bxor 0xFF
            [System.IO.File]::WriteAllBytes($path, $bytes)

            $result = Restore-SqliteReplica -ReplicaPath $case.Replica -Generation $script:Generation -OutputPath $case.Output -AllowPartial -WarningVariable warnings -WarningAction SilentlyContinue -ErrorAction Stop
            $result.Partial | Should -BeTrue
            $result.PartialReason | Should -Not -BeNullOrEmpty
            @($warnings).Count | Should -BeGreaterOrEqual 1
            $dump = Get-DbDump -Path $case.Output
            $dump.integrity | Should -Be 'ok'
            $dump.tables.t | Should -Be $dump.maxId
            $dump.maxId | Should -BeLessThan $script:GenerationDump.maxId
            $restored = [pscustomobject]@{ Generation = $result.Generation; Index = $result.Index; Offset = $result.Offset }
            $damaged = [pscustomobject]@{ Generation = $script:Generation; Index = [long]$victim.Index; Offset = $victim.Offset }
            Compare-ReplicaPosition $restored $damaged | Should -BeLessOrEqual 0 -Because "the restore stops before the damaged segment at $($victim.Name), got $($result.Position)"
        }
    }

    Context 'Outputs' {
        It 'fails with OutputExists and leaves an existing file unchanged' {
            $case = New-Case -Name 'exists'
            [System.IO.File]::WriteAllText($case.Output, 'precious content')
            $before = (Get-FileHash -LiteralPath $case.Output).Hash
            $record = Get-RestoreError @{ ReplicaPath = $case.Replica; OutputPath = $case.Output }
            $record.FullyQualifiedErrorId | Should -Be "OutputExists,$script:CommandId"
            (Get-FileHash -LiteralPath $case.Output).Hash | Should -Be $before
            Get-DirectoryEntry -Path $case.OutDir | Should -Be @('restored.db')
        }

        It 'with -WhatIf creates no output and no temporary file' {
            $case = New-Case -Name 'whatif'
            $result = Restore-SqliteReplica -ReplicaPath $case.Replica -OutputPath $case.Output -WhatIf -ErrorAction Stop
            $result | Should -BeNullOrEmpty
            Test-Path -LiteralPath $case.Output | Should -BeFalse
            Get-DirectoryEntry -Path $case.OutDir | Should -BeNullOrEmpty
        }

        It 'fails with OutputNotWritable on a read-only file system' -Skip:(-not $script:IsRoot) {
            $case = New-Case -Name 'readonly'
            $readOnly = New-TmpfsMount -ReadOnly -Path (Join-Path $TestDrive 'ro-out')
            $record = Get-RestoreError @{ ReplicaPath = $case.Replica; OutputPath = (Join-Path $readOnly 'restored.db') }
            $record.FullyQualifiedErrorId | Should -Be "OutputNotWritable,$script:CommandId"
            Get-DirectoryEntry -Path $readOnly | Should -BeNullOrEmpty
        }

        It 'fails with OutputNotWritable on a full file system and leaves no file on it' -Skip:(-not $script:IsRoot) {
            $case = New-Case -Name 'full'
            $small = New-TmpfsMount -Size 256k -Path (Join-Path $TestDrive 'small-out')
            $record = Get-RestoreError @{ ReplicaPath = $case.Replica; OutputPath = (Join-Path $small 'restored.db') }
            $record.FullyQualifiedErrorId | Should -Be "OutputNotWritable,$script:CommandId"
            Get-DirectoryEntry -Path $small | Should -BeNullOrEmpty
        }
    }

    Context 'Provisioning switches' {
        It 'with -IfDbNotExists does nothing, successfully, when the output exists' {
            $case = New-Case -Name 'if-db-not-exists'
            [System.IO.File]::WriteAllText($case.Output, 'already provisioned')
            $before = (Get-FileHash -LiteralPath $case.Output).Hash
            $result = Restore-SqliteReplica -ReplicaPath $case.Replica -OutputPath $case.Output -IfDbNotExists -ErrorVariable errors -ErrorAction SilentlyContinue
            $errors | Should -BeNullOrEmpty
            $result | Should -BeNullOrEmpty
            (Get-FileHash -LiteralPath $case.Output).Hash | Should -Be $before
            Get-DirectoryEntry -Path $case.OutDir | Should -Be @('restored.db')
        }

        It 'with -IfReplicaExists does nothing, successfully, when the replica holds no backup (and fails with NoMatchingBackup without it)' {
            $empty = Join-Path $TestDrive 'empty-replica'
            $null = New-Item -ItemType Directory -Path $empty
            $outDir = Join-Path $TestDrive 'if-replica-exists'
            $null = New-Item -ItemType Directory -Path $outDir
            $output = Join-Path $outDir 'restored.db'

            $result = Restore-SqliteReplica -ReplicaPath $empty -OutputPath $output -IfReplicaExists -ErrorVariable errors -ErrorAction SilentlyContinue
            $errors | Should -BeNullOrEmpty
            $result | Should -BeNullOrEmpty
            Get-DirectoryEntry -Path $outDir | Should -BeNullOrEmpty

            $record = Get-RestoreError @{ ReplicaPath = $empty; OutputPath = $output }
            $record.FullyQualifiedErrorId | Should -Be "NoMatchingBackup,$script:CommandId"
            Get-DirectoryEntry -Path $outDir | Should -BeNullOrEmpty
        }
    }

    Context 'Selections' {
        It 'restores up to the index of a snapshot piped from Get-ReplicaSnapshot' {
            $snapshot = Get-ReplicaSnapshot -ReplicaPath $script:Fixture | Select-Object -Last 1
            $output = New-RestoreTarget -Parent $TestDrive
            $result = Get-ReplicaSnapshot -ReplicaPath $script:Fixture | Select-Object -Last 1 | Restore-SqliteReplica -OutputPath $output -ErrorAction Stop
            $result.Generation | Should -Be $snapshot.Generation
            $result.SnapshotIndex | Should -Be $snapshot.Index
            $result.Index | Should -Be $snapshot.Index

            $direct = New-RestoreTarget -Parent $TestDrive
            $null = Restore-SqliteReplica -ReplicaPath $script:Fixture -Generation $snapshot.Generation -Index $snapshot.Index -OutputPath $direct -ErrorAction Stop
            $dump = Get-DbDump -Path $output
            $dump.integrity | Should -Be 'ok'
            $dump.digest | Should -Be (Get-DbDump -Path $direct).digest
        }

        It 'reads -Timestamp given as a string with Z (or with an offset) as that instant' {
            $files = @(Get-ReplicaFile -ReplicaDir $script:Fixture)
            $gaps = foreach ($group in ($files | Group-Object -Property Generation)) {
                if ($group.Count -ge 2) {
                    $gap = Get-GapMidpoint -Files $group.Group
                    [pscustomobject]@{ Generation = $group.Name; Time = $gap.Time; Gap = $gap.Gap }
                }
            }
            $gap = $gaps | Sort-Object -Property Gap -Descending | Select-Object -First 1
            $gap.Gap.TotalMilliseconds | Should -BeGreaterThan 500
            $utc = Format-RfcTimestamp $gap.Time
            $utc | Should -Match 'Z$'
            $shifted = $gap.Time.ToOffset([timespan]'05:30').ToString("yyyy-MM-dd'T'HH:mm:ss.fffffffzzz", [cultureinfo]::InvariantCulture)

            $fromString = New-RestoreTarget -Parent $TestDrive
            $result = Restore-SqliteReplica -ReplicaPath $script:Fixture -OutputPath $fromString -Timestamp $utc -ErrorAction Stop
            $result.Generation | Should -Be $gap.Generation
            $result.RestoredTo | Should -BeLessOrEqual $gap.Time
            $fromOffset = New-RestoreTarget -Parent $TestDrive
            $null = Restore-SqliteReplica -ReplicaPath $script:Fixture -OutputPath $fromOffset -Timestamp $shifted -ErrorAction Stop
            $fromValue = New-RestoreTarget -Parent $TestDrive
            $null = Restore-SqliteReplica -ReplicaPath $script:Fixture -OutputPath $fromValue -Timestamp $gap.Time -ErrorAction Stop

            $dump = Get-DbDump -Path $fromString
            $dump.integrity | Should -Be 'ok'
            $dump.maxId | Should -BeLessThan $script:Source.maxId
            (Get-DbDump -Path $fromOffset).digest | Should -Be $dump.digest
            (Get-DbDump -Path $fromValue).digest | Should -Be $dump.digest
        }

        It 'restores -Index 0x0 to the end of WAL index 0, as litestream restore -index 00000000 does' {
            $output = New-RestoreTarget -Parent $TestDrive
            $result = Restore-SqliteReplica -ReplicaPath $script:Fixture -OutputPath $output -Index 0x0 -ErrorAction Stop
            $result.SnapshotIndex | Should -Be 0
            $result.Index | Should -Be 0
            $dump = Get-DbDump -Path $output
            $dump.integrity | Should -Be 'ok'
            $dump.tables.t | Should -Be $dump.maxId

            $theirs = New-RestoreTarget -Parent $TestDrive
            $run = Invoke-Litestream -- restore -o $theirs -index 00000000 ('file://' + $script:Fixture)
            $run.ExitCode | Should -Be 0 -Because $run.Output
            $dump.digest | Should -Be (Get-DbDump -Path $theirs).digest
        }
    }
}
