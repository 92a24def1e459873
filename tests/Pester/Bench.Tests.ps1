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
