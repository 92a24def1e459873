#Requires -Version 7.6
<#
.SYNOPSIS
    SqliteReplica and Litestream v0.3.13 side by side on the same machine, the same files and the
    same litestream.yml, in alternating runs. Writes docs/benchmarks.md and raw JSON in out/bench/.

.DESCRIPTION
    Cases (tests/Bench/Cases.ps1):
      Restore    a database plus WAL history across several WAL indexes (made by Litestream
                 itself), restored from a local directory and from moto by each tool; whole
                 command, time inside the restore, and the physical floor in the same round
                 (lz4 -d of the snapshot to disk with fsync, plus reading every segment).
      FarRestore a trickle's history of many small segments (made by Litestream in moto, with
                 100 ms monitor and sync intervals and a 10 s checkpoint interval so that it takes
                 a minute and a half to make), restored by each tool through the test proxy with
                 40 ms added to every GET; the restores use the plain YAML like every other case.
      Lag        commit-to-replica time of the test writer's commits, dense (about 20 tx/s) and
                 sparse (one every 5 s), default 1 s sync interval, local-directory replica.
      Overhead   the writer's single-row insert rate without and with each replicator attached.
      CpuPerMB   replicator CPU per MB of WAL shipped.
      Resources  idle CPU and peak RSS with 1 and 20 databases; an idle pwsh beside them.
      Requests   S3 requests per hour (through the counting test proxy in front of moto) for a
                 trickle of writes and for idle time, and the R2 monthly cost they imply.
      Burst      the writer at its maximum rate: local WAL and shadow sizes, catch-up time.

    Both tools run with their defaults (the same YAML file, nothing else): no benchmark-only
    settings. Mode Smoke (seconds, for the smoke test), Quick (default, ~100 MB restore case) or
    Full (~1 GB database plus ~1 GB of WAL history); also from SQLITEREPLICA_BENCH_MODE.

    Needs the build output (module, test writer, S3 proxy), the Litestream binary
    (SQLITEREPLICA_LITESTREAM or tests/tools/node_modules), moto_server, sqlite3, lz4 and curl.
#>
[CmdletBinding()]
param(
    [ValidateSet('Smoke', 'Quick', 'Full')]
    [string]$Mode = $(if ($env:SQLITEREPLICA_BENCH_MODE) { $env:SQLITEREPLICA_BENCH_MODE } else { 'Quick' }),

    [string[]]$Case = @('Restore', 'FarRestore', 'Lag', 'Overhead', 'CpuPerMB', 'Resources', 'Requests', 'Burst'),

    # Only rewrite the report from the raw results of the mode (no measuring).
    [switch]$ReportOnly,

    # Raw results (results.json); default out/bench.
    [string]$OutputDirectory,

    # The Markdown report; default docs/benchmarks.md (Smoke mode: <OutputDirectory>/benchmarks.md).
    [string]$ReportPath,

    [switch]$KeepScratch
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$allCases = @('Restore', 'FarRestore', 'Lag', 'Overhead', 'CpuPerMB', 'Resources', 'Requests', 'Burst')
$Case = @($Case | ForEach-Object { $_ -split ',' } | ForEach-Object { $_.Trim() } | Where-Object { $_ })
foreach ($name in $Case) { if ($name -notin $allCases) { throw "Unknown case '$name'. Known: $($allCases -join ', ')." } }
if ($ReportOnly) { $Case = @() }
$RepoRoot = [System.IO.Path]::GetFullPath((Join-Path $PSScriptRoot '../..'))
if (-not $OutputDirectory) { $OutputDirectory = Join-Path $RepoRoot 'out/bench' }
$OutputDirectory = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($OutputDirectory)
if (-not $ReportPath) { $ReportPath = if ($Mode -eq 'Smoke') { Join-Path $OutputDirectory 'benchmarks.md' } else { Join-Path $RepoRoot 'docs/benchmarks.md' } }
$ReportPath = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($ReportPath)
$null = New-Item -ItemType Directory -Path $OutputDirectory -Force

$defaults = [ordered]@{
    SQLITEREPLICA_MODULE     = Join-Path $RepoRoot 'out/SqliteReplica/SqliteReplica.psd1'
    SQLITEREPLICA_WRITER     = Join-Path $RepoRoot 'out/tools/SqliteWriter/SqliteWriter'
    SQLITEREPLICA_S3PROXY    = Join-Path $RepoRoot 'out/tools/S3Proxy/S3Proxy'
    SQLITEREPLICA_LITESTREAM = Join-Path $RepoRoot 'tests/tools/node_modules/@flydotio/litestream-linux-x64/litestream'
}
foreach ($name in $defaults.Keys) {
    $value = [Environment]::GetEnvironmentVariable($name)
    if ([string]::IsNullOrWhiteSpace($value)) { $value = $defaults[$name]; [Environment]::SetEnvironmentVariable($name, $value) }
    if (-not (Test-Path -LiteralPath $value)) { throw "$name points to '$value', which does not exist. Run: dotnet pwsh ./build.ps1 Bench" }
}
foreach ($tool in 'sqlite3', 'lz4', 'curl', 'moto_server') {
    if (-not (Get-Command -Name $tool -CommandType Application -ErrorAction SilentlyContinue)) { throw "The benchmark needs '$tool' on PATH." }
}

foreach ($helper in 'TestHelpers', 'S3Fixture') {
    Import-Module -Name (Join-Path $RepoRoot "tests/Pester/$helper.psm1") -Force
}
Import-Module -Name (Join-Path $PSScriptRoot 'BenchHelpers.psm1') -Force

# The replica watcher (C#), decoding objects with the LZ4 library the module ships.
$deps = Join-Path ([System.IO.Path]::GetDirectoryName($env:SQLITEREPLICA_MODULE)) 'dependencies'
$lz4Assemblies = @('K4os.Hash.xxHash.dll', 'K4os.Compression.LZ4.dll', 'K4os.Compression.LZ4.Streams.dll') | ForEach-Object { Join-Path $deps $_ }
foreach ($a in $lz4Assemblies) { Add-Type -LiteralPath $a }
if (-not ('SqliteReplicaBench.ReplicaWatcher' -as [type])) {
    Add-Type -TypeDefinition ([System.IO.File]::ReadAllText((Join-Path $PSScriptRoot 'ReplicaWatcher.cs'))) -ReferencedAssemblies ($lz4Assemblies + @('System.Runtime', 'System.Collections', 'System.Threading', 'System.Threading.Thread', 'System.IO.FileSystem.Watcher', 'System.ComponentModel.Primitives', 'System.Collections.Concurrent', 'System.Linq')) -Language CSharp -IgnoreWarnings -CompilerOptions '-nowarn:CS1701,CS1702'
}

# --- Settings per mode ---------------------------------------------------------------------

$Settings = switch ($Mode) {
    'Smoke' { [ordered]@{ RestoreRows = 6000; RestoreTx = 4; RestoreRounds = 1; RestoreS3 = $false; FarSeconds = 6; FarRounds = 1; FarLatencyMs = 40; LagDenseSeconds = 3; LagSparseCommits = 1; LagReps = 1; LagPause = 1
            OverheadRows = 10000; OverheadPairs = 1; CpuRows = 2000; CpuSettleSeconds = 0; ResourceDbs = @(1); ResourceMemoryStarts = 1; IdleSeconds = 3; RequestSeconds = 6; RequestIdleSeconds = 4; BurstSeconds = 2 } }
    'Quick' { [ordered]@{ RestoreRows = 140000; RestoreTx = 10; RestoreRounds = 3; RestoreS3 = $true; FarSeconds = 45; FarRounds = 2; FarLatencyMs = 40; LagDenseSeconds = 30; LagSparseCommits = 8; LagReps = 1; LagPause = 3
            OverheadRows = 50000; OverheadPairs = 3; CpuRows = 20000; CpuSettleSeconds = 70; ResourceDbs = @(1, 20); ResourceMemoryStarts = 3; IdleSeconds = 60; RequestSeconds = 60; RequestIdleSeconds = 30; BurstSeconds = 10 } }
    'Full' { [ordered]@{ RestoreRows = 1400000; RestoreTx = 10; RestoreRounds = 5; RestoreS3 = $true; FarSeconds = 90; FarRounds = 3; FarLatencyMs = 40; LagDenseSeconds = 60; LagSparseCommits = 24; LagReps = 2; LagPause = 3
            OverheadRows = 200000; OverheadPairs = 5; CpuRows = 100000; CpuSettleSeconds = 70; ResourceDbs = @(1, 20); ResourceMemoryStarts = 3; IdleSeconds = 60; RequestSeconds = 180; RequestIdleSeconds = 120; BurstSeconds = 20 } }
}

$Scratch = New-TestDirectory -Prefix 'sqlitereplica-bench'
$env:TMPDIR = Join-Path $Scratch 'tmp'
$null = New-Item -ItemType Directory -Path $env:TMPDIR -Force
$env:LITESTREAM_ACCESS_KEY_ID = 'AKIABENCHMARK0000000'
$env:LITESTREAM_SECRET_ACCESS_KEY = 'benchmark-secret-not-a-real-one'
$script:WriterPath = $env:SQLITEREPLICA_WRITER
$Litestream = $env:SQLITEREPLICA_LITESTREAM
$Pwsh = Get-PwshCommand

$Bench = [ordered]@{
    Mode      = $Mode
    StartedAt = [DateTimeOffset]::UtcNow.ToString('u')
    Machine   = Get-BenchMachine
    Versions  = [ordered]@{
        SqliteReplica = (Import-PowerShellDataFile -LiteralPath $env:SQLITEREPLICA_MODULE).ModuleVersion
        Litestream    = ((& $Litestream version) | Select-Object -First 1)
        Sqlite3Cli    = ((& sqlite3 --version) -split ' ')[0]
    }
    Settings  = $Settings
    Cases     = [ordered]@{}
    Errors    = [ordered]@{}
}

function Write-BenchLine {
    param([string]$Case, [string]$Text)
    Write-Host ('[{0:HH:mm:ss}] {1,-9} {2}' -f [DateTime]::Now, $Case, $Text)
}

function Invoke-Writer {
    # The test writer to completion (init, exec, dump); throws on failure.
    param([Parameter(ValueFromRemainingArguments)][string[]]$Arguments)
    $r = Measure-BenchCommand -FilePath $script:WriterPath -ArgumentList $Arguments
    if ($r.ExitCode -ne 0) { throw "SqliteWriter $($Arguments -join ' ') failed: $($r.Output)" }
    $r.Output
}

function Start-Writer {
    # The test writer in the background (own process group): 'write --stamp' plus arguments.
    param([Parameter(Mandatory)][string]$Database, [Parameter(Mandatory)][string]$LogPath, [string[]]$Arguments = @())
    Start-TestProcess -FilePath $script:WriterPath -ArgumentList (@('write', '--db', $Database, '--stamp') + $Arguments) -LogPath $LogPath -Name 'writer'
}

function Read-Commit {
    # The (id, unix ms) pairs of a --stamp writer log.
    param([Parameter(Mandatory)][string]$LogPath)
    $stream = [System.IO.FileStream]::new($LogPath, 'Open', 'Read', 'ReadWrite, Delete')
    try { $text = [System.IO.StreamReader]::new($stream).ReadToEnd() } finally { $stream.Dispose() }
    foreach ($m in [regex]::Matches($text, '(?m)^committed (\d+) at (\d+)\s*$')) {
        [pscustomobject]@{ Id = [long]$m.Groups[1].Value; At = [long]$m.Groups[2].Value }
    }
}

function New-CaseDirectory {
    param([Parameter(Mandatory)][string]$Name)
    $path = Join-Path $Scratch $Name
    if (Test-Path -LiteralPath $path) { Remove-Item -LiteralPath $path -Recurse -Force }
    (New-Item -ItemType Directory -Path $path -Force).FullName
}

function Get-ToolOrder {
    # ours, litestream, litestream, ours, ... : alternating, each tool first in half the rounds.
    param([int]$Round)
    if ($Round % 2 -eq 0) { @('ours', 'litestream') } else { @('litestream', 'ours') }
}

. (Join-Path $PSScriptRoot 'Cases.ps1')
. (Join-Path $PSScriptRoot 'Report.ps1')

# A run of some cases only keeps the other cases' figures from the last run of the same mode
# (each case records when it was measured; ratios are always from one case's own run).
$resultsPath = Join-Path $OutputDirectory "results-$($Mode.ToLowerInvariant()).json"
if ((Test-Path -LiteralPath $resultsPath) -and @($allCases | Where-Object { $_ -notin $Case }).Count -gt 0) {
    $previous = Get-Content -Raw -LiteralPath $resultsPath | ConvertFrom-Json -Depth 20
    foreach ($p in @($previous.Cases.PSObject.Properties)) { if ($p.Name -notin $Case) { $Bench.Cases[$p.Name] = $p.Value } }
    if ($previous.PSObject.Properties['Errors'] -and $previous.Errors) {
        foreach ($p in @($previous.Errors.PSObject.Properties)) { if ($p.Name -notin $Case) { $Bench.Errors[$p.Name] = $p.Value } }
    }
}

$exitCode = 0
try {
    foreach ($name in $Case) {
        Write-BenchLine $name 'starting'
        try {
            $result = & "Invoke-$($name)Case"
            $result.MeasuredAt = [DateTimeOffset]::UtcNow.ToString('u')
            $Bench.Cases[$name] = $result
            $Bench.Errors.Remove($name)
        }
        catch {
            $exitCode = 1
            $Bench.Errors[$name] = "$($_.Exception.Message) ($($_.InvocationInfo.PositionMessage -replace '\s+', ' '))"
            Write-BenchLine $name "FAILED: $($_.Exception.Message) $($_.ScriptStackTrace)"
        }
        finally {
            Stop-TestProcess -All -Signal KILL -TimeoutSeconds 10 -ErrorAction SilentlyContinue | Out-Null
        }
        # Raw results after every case, so a late failure keeps what was measured.
        $Bench.FinishedAt = [DateTimeOffset]::UtcNow.ToString('u')
        $Bench | ConvertTo-Json -Depth 12 | Set-Content -LiteralPath $resultsPath -Encoding utf8NoBOM
    }
    Write-BenchReport -Bench $Bench -Path $ReportPath
    Write-Host "Report: $ReportPath"
    Write-Host "Raw results: $resultsPath"
}
finally {
    Stop-TestProcess -All -Signal KILL -TimeoutSeconds 10 -ErrorAction SilentlyContinue | Out-Null
    if (-not $KeepScratch) { Remove-Item -LiteralPath $Scratch -Recurse -Force -ErrorAction SilentlyContinue }
}
exit $exitCode
