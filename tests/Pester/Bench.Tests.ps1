#Requires -Version 7.6
# Smoke test of the benchmark harness (tests/Bench/Invoke-Bench.ps1): its Lag case in Smoke mode,
# both replicators for real (the module in its own pwsh, the Litestream binary), writing its JSON
# and report into TestDrive. It asserts that figures were produced, never how fast anything was:
# the benchmark itself is `build.ps1 Bench`. Needs SQLITEREPLICA_MODULE, SQLITEREPLICA_WRITER and
# SQLITEREPLICA_LITESTREAM (set by `build.ps1 Test`); the S3 proxy is not used by this case.

Describe 'Benchmark harness (Smoke mode)' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
        $script:OutDir = Join-Path $TestDrive 'bench'
        $harness = Join-Path $PSScriptRoot '../Bench/Invoke-Bench.ps1'
        $pwsh = Get-PwshCommand
        $arguments = @($pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $harness, '-Mode', 'Smoke', '-Case', 'Lag', '-OutputDirectory', $script:OutDir)
        $script:Run = Invoke-NativeProcess -FilePath $pwsh.FilePath -ArgumentList $arguments -TimeoutSeconds 240 -MergeStandardError -Environment @{ NO_COLOR = '1' }
    }

    It 'measures commit-to-replica lag for both tools and writes the raw figures and the report' {
        $script:Run.ExitCode | Should -Be 0 -Because $script:Run.StdOut
        $results = [System.IO.File]::ReadAllText((Join-Path $script:OutDir 'results-smoke.json')) | ConvertFrom-Json
        $summary = @($results.Cases.Lag.Summary)
        $summary.Count | Should -Be 4
        foreach ($row in $summary) {
            $row.Commits | Should -BeGreaterThan 0 -Because "$($row.Tool) $($row.Pattern) writes were replicated"
            $row.P99Ms | Should -Not -BeNullOrEmpty
            $row.P99Ms | Should -BeGreaterOrEqual $row.P50Ms
        }
        @($summary.Tool | Sort-Object -Unique) | Should -Be @('litestream', 'ours')
        Get-Content -Raw -LiteralPath (Join-Path $script:OutDir 'benchmarks.md') | Should -Match '## Replication lag'
    }
}

Describe 'Benchmark overhead control (SqliteWriter hold)' -Tag 'Integration' {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    }

    It 'holds a read transaction that keeps the application from restarting its WAL, until SIGTERM' {
        # The overhead case reports this control as "what the read lock alone costs": it must really
        # hold the lock. With it, the writer's autocheckpoint (1000 pages) cannot restart the WAL,
        # so 3000 one-row commits leave about 3000 frames; without it the WAL wraps at about 1000.
        $db = Join-Path $TestDrive 'held.db'
        $null = Invoke-Writer init --db $db
        $writer = Get-WriterCommand
        $holder = Start-TestProcess -FilePath $writer.FilePath -ArgumentList (@($writer.PrefixArguments) + @('hold', '--db', $db, '--renew-ms', '200')) -LogPath (Join-Path $TestDrive 'hold.log') -Name 'hold'
        try {
            Wait-Until -TimeoutSeconds 30 -Message 'the holder holding its read' -Condition { $holder.ReadLog() -match 'holding' } | Out-Null
            $null = Invoke-Writer write --db $db --count 3000 --synchronous normal
            $frames = [math]::Floor(((Get-Item -LiteralPath "$db-wal").Length - 32) / (4096 + 24))
            $frames | Should -BeGreaterOrEqual 3000 -Because 'the WAL cannot restart under a held read transaction'
        }
        finally {
            $code = $holder | Stop-TestProcess -Signal TERM -TimeoutSeconds 30
        }
        $code | Should -Be 0
        $holder.ReadLog() | Should -Match 'stopped'

        # The same writes with no holder: the writer (kept open, so its WAL is not deleted on close)
        # restarts its WAL at the autocheckpoint, which is what the held read prevented above.
        $alone = Join-Path $TestDrive 'alone.db'
        $null = Invoke-Writer init --db $alone
        $open = Start-TestProcess -FilePath $writer.FilePath -ArgumentList (@($writer.PrefixArguments) + @('write', '--db', $alone, '--count', '3000', '--synchronous', 'normal', '--hold-open')) -LogPath (Join-Path $TestDrive 'alone.log') -Name 'writer'
        try {
            Wait-Until -TimeoutSeconds 60 -Message 'the writer done and holding its database open' -Condition { $open.ReadLog() -match 'holding' } | Out-Null
            $aloneFrames = [math]::Floor(((Get-Item -LiteralPath "$alone-wal").Length - 32) / (4096 + 24))
            $aloneFrames | Should -BeLessThan 1500 -Because 'without a reader the autocheckpoint restarts the WAL at about 1000 pages'
        }
        finally {
            $null = $open | Stop-TestProcess -Signal TERM -TimeoutSeconds 30
        }
    }
}
