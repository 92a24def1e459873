#Requires -Version 7.6
<#
.SYNOPSIS
    SqliteReplica's reliability campaign: real processes, real files, real signals, a real S3 server
    (moto) behind a fault-injecting proxy. Writes docs/reliability.md and raw JSON in out/chaos/.

.DESCRIPTION
    Campaigns (each a file in tests/Chaos/Campaigns):
      Crash        kill -9 of the replicator's process group at random moments under continuous
                   writes, and at every named crash point (SQLITEREPLICA_CRASH_AT); after each
                   trial a restore must be a committed prefix holding every confirmed position.
      WriterCrash  kill -9 of the application (the test writer) in the middle of big transactions
                   and of its own checkpoints; the replica must only ever hold committed data.
      Network      S3 faults (5xx bursts, SlowDown, resets, stalls, cut bodies, endpoint down)
                   under continuous writes: commits lost, catch-up time, request amplification.
      TwoWriters   a second replicator on the same database or the same replica location (file
                   and S3) must be refused with AlreadyReplicating within seconds.
      StoreDown    the S3 endpoint down for a long spell: shadow WAL growth, status, recovery.
      Hostile      damaged replicas, damaged local state, bad configurations, bad arguments, bad
                   credentials and buckets: a clear error id, nothing overwritten, no wrong database.
      Security     known secrets through every cmdlet: none may appear in any output, log, error,
                   status or metrics; files the module creates must not be world-readable.
      Soak         mixed traffic (inserts, updates, deletes, blobs, VACUUM, schema changes) for 75 s
                   (Long: 30 min; SQLITEREPLICA_SOAK_SECONDS overrides) with short snapshot and
                   retention intervals to a file replica and S3: memory, meta directory and replicas
                   bounded, the final restore exact, 5 point-in-time restores exact (replay oracle).
      Fuzz         the xunit fuzz targets (LZ4 frames, WAL segments on restore, the shadow WAL
                   reader, litestream.yml) run by 'dotnet test' for 20 s each (Long: 600 s; the
                   variable SQLITEREPLICA_FUZZ_SECONDS overrides): inputs per target and failures.

    Quick mode (the default; a few minutes) runs every campaign small; Long mode runs the sizes of
    the reliability issue (200+ crash trials, 30 s+ stalls, a long outage). The mode may also come
    from SQLITEREPLICA_CHAOS_MODE.

    Needs the build output (./build.ps1 Build): the module, the test writer and the S3 proxy,
    found through SQLITEREPLICA_MODULE, SQLITEREPLICA_WRITER and SQLITEREPLICA_S3PROXY or at
    their places under out/. Needs moto_server, and root for the tmpfs cases (skipped otherwise,
    and reported as skipped).

    Exit code 0 when every goal was met, 1 when a goal was missed or a campaign could not run.

.EXAMPLE
    dotnet pwsh ./tests/Chaos/Invoke-Chaos.ps1 -Mode Quick
.EXAMPLE
    dotnet pwsh ./tests/Chaos/Invoke-Chaos.ps1 -Campaign Hostile,Security -ReportPath ./out/chaos/reliability.md
#>
[CmdletBinding()]
param(
    [ValidateSet('Quick', 'Long')]
    [string]$Mode = $(if ($env:SQLITEREPLICA_CHAOS_MODE) { $env:SQLITEREPLICA_CHAOS_MODE } else { 'Quick' }),

    # Seeds every random choice (kill delays, trial order, damaged bytes); printed and recorded.
    [int]$Seed = $(if ($env:SQLITEREPLICA_CHAOS_SEED) { [int]$env:SQLITEREPLICA_CHAOS_SEED } else { [System.Random]::Shared.Next(1, [int]::MaxValue) }),

    # Crash, WriterCrash, Network, TwoWriters, StoreDown, Hostile, Security, Soak, Fuzz (default:
    # all); a comma-separated string works too.
    [string[]]$Campaign = @('Crash', 'WriterCrash', 'Network', 'TwoWriters', 'StoreDown', 'Hostile', 'Security', 'Soak', 'Fuzz'),

    # Raw results (one JSON file per campaign and summary.json).
    [string]$OutputDirectory,

    # The Markdown report; regenerated on every run.
    [string]$ReportPath,

    # Keep the scratch folder (databases, replicas, logs) for inspection.
    [switch]$KeepScratch,

    # Run every campaign in this process, one after the other. Quick mode otherwise runs the
    # lighter campaigns (Soak, StoreDown, TwoWriters, Hostile) in a second pwsh at the same time.
    [switch]$Sequential,

    # Internal (the second lane): write each campaign's result as JSON into this folder and stop
    # there (no report, no self-checks).
    [string]$ResultsOnly
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$known = @('Crash', 'WriterCrash', 'Network', 'TwoWriters', 'StoreDown', 'Hostile', 'Security', 'Soak', 'Fuzz')
$Campaign = @($Campaign | ForEach-Object { $_ -split ',' } | ForEach-Object { $_.Trim() } | Where-Object { $_ })
foreach ($name in $Campaign) {
    if ($name -notin $known) { throw "Unknown campaign '$name'. Known: $($known -join ', ')." }
}

$RepoRoot = [System.IO.Path]::GetFullPath((Join-Path $PSScriptRoot '../..'))
if (-not $OutputDirectory) { $OutputDirectory = Join-Path $RepoRoot 'out/chaos' }
if (-not $ReportPath) { $ReportPath = Join-Path $RepoRoot 'docs/reliability.md' }
$OutputDirectory = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($OutputDirectory)
$ReportPath = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($ReportPath)

# --- The build output ----------------------------------------------------------------------

$defaults = [ordered]@{
    SQLITEREPLICA_MODULE  = Join-Path $RepoRoot 'out/SqliteReplica/SqliteReplica.psd1'
    SQLITEREPLICA_WRITER  = Join-Path $RepoRoot 'out/tools/SqliteWriter/SqliteWriter'
    SQLITEREPLICA_S3PROXY = Join-Path $RepoRoot 'out/tools/S3Proxy/S3Proxy'
}
foreach ($name in $defaults.Keys) {
    $value = [Environment]::GetEnvironmentVariable($name)
    if ([string]::IsNullOrWhiteSpace($value)) {
        $value = $defaults[$name]
        [Environment]::SetEnvironmentVariable($name, $value)
    }
    if (-not (Test-Path -LiteralPath $value)) {
        throw "$name points to '$value', which does not exist. Build first: dotnet pwsh ./build.ps1 Build"
    }
}
# The crash-point variable is for the replicator children only, never for this process.
if ($env:SQLITEREPLICA_CRASH_AT) { throw 'SQLITEREPLICA_CRASH_AT is set in this session; unset it (the campaign sets it per replicator).' }

foreach ($helper in 'TestHelpers', 'IntegrationHelpers', 'S3Fixture') {
    Import-Module -Name (Join-Path $RepoRoot "tests/Pester/$helper.psm1") -Force
}
Import-Module -Name (Join-Path $PSScriptRoot 'ChaosHelpers.psm1') -Force
Import-Module -Name $env:SQLITEREPLICA_MODULE -Force

# --- Scratch, settings, shared fixtures ----------------------------------------------------

$scratch = New-TestDirectory -Prefix 'sqlitereplica-chaos'
Add-ScrubRule -Text $scratch -Placeholder '<scratch>'
Add-ScrubRule -Text $RepoRoot -Placeholder '<repo>'
Add-ScrubRule -Text $HOME -Placeholder '<home>'
# Every temporary file of this process and its children (restores, drills, S3 spool files) lands
# in the scratch folder, where the security campaign can inspect it and the end removes it.
$savedTmp = $env:TMPDIR
$tmp = Join-Path $scratch 'tmp'
$null = New-Item -ItemType Directory -Path $tmp -Force
$env:TMPDIR = $tmp

$isRoot = (& id -u) -eq '0'
# moto accepts any credentials; the S3 campaigns use these (the security campaign its own).
$savedCredentials = @{ LITESTREAM_ACCESS_KEY_ID = $env:LITESTREAM_ACCESS_KEY_ID; LITESTREAM_SECRET_ACCESS_KEY = $env:LITESTREAM_SECRET_ACCESS_KEY }
$env:LITESTREAM_ACCESS_KEY_ID = 'AKIACHAOSCAMPAIGN000'
$env:LITESTREAM_SECRET_ACCESS_KEY = 'chaos-campaign-secret-not-a-real-one'
$Chaos = [pscustomobject]@{
    Mode      = $Mode
    Seed      = $Seed
    Scratch   = $scratch
    TempDir   = $tmp
    IsRoot    = $isRoot
    RepoRoot  = $RepoRoot
    S3        = $null
    Quick     = $Mode -eq 'Quick'
    Children  = [System.Collections.Generic.List[object]]::new()
}

function Get-ChaosRandom {
    # One generator per campaign, derived from the seed, so one campaign's draws never shift another's.
    param([Parameter(Mandatory)][string]$Name)
    $hash = 0
    foreach ($c in $Name.ToCharArray()) { $hash = ($hash * 31 + [int]$c) % 1000003 }
    [System.Random]::new(($Chaos.Seed + $hash) % [int]::MaxValue)
}

function Get-ChaosS3 {
    # moto_server and the fault proxy, started once and shared by the S3 campaigns.
    if ($null -eq $Chaos.S3) {
        $moto = Start-MotoServer -LogPath (Join-Path $Chaos.Scratch 's3/moto.log')
        $proxy = Start-S3Proxy -Upstream $moto.Endpoint -LogPath (Join-Path $Chaos.Scratch 's3/s3proxy.log')
        $Chaos.S3 = [pscustomobject]@{ Moto = $moto; Proxy = $proxy }
    }
    $Chaos.S3
}

function New-ChaosBucket {
    param([Parameter(Mandatory)][string]$Name)
    $s3 = Get-ChaosS3
    $bucket = ('chaos-{0}-{1}' -f $Name, [guid]::NewGuid().ToString('N').Substring(0, 8)).ToLowerInvariant()
    New-S3Bucket -Endpoint $s3.Moto.Endpoint -Name $bucket
}

function Register-ChaosChild {
    # A process of the running campaign (replicator, writer): killed when the campaign ends.
    param([Parameter(Mandatory, ValueFromPipeline)][object]$Process)
    process {
        $Chaos.Children.Add($Process)
        $Process
    }
}

function Stop-ChaosChildren {
    foreach ($child in @($Chaos.Children)) {
        if (-not $child.HasExited -or @(Get-ProcessGroupMember -Pgid $child.Pgid).Count -gt 0) {
            try { $null = $child | Stop-TestProcess -Signal KILL -TimeoutSeconds 5 } catch { Write-Warning $_.Exception.Message }
        }
    }
    $Chaos.Children.Clear()
}

function Write-ChaosLine {
    param([Parameter(Mandatory)][string]$Campaign, [Parameter(Mandatory)][string]$Text)
    Write-Host ('[{0:HH:mm:ss}] {1,-11} {2}' -f [DateTime]::Now, $Campaign, (ConvertTo-ScrubbedText $Text))
}

function New-CampaignResult {
    param([Parameter(Mandatory)][string]$Name, [Parameter(Mandatory)][string]$Title, [string]$Description = '')
    [pscustomobject][ordered]@{
        Name         = $Name
        Title        = $Title
        Description  = $Description
        Figures      = [System.Collections.Generic.List[object]]::new()
        Rows         = [System.Collections.Generic.List[object]]::new()
        RowColumns   = @()
        Findings     = [System.Collections.Generic.List[object]]::new()
        Notes        = [System.Collections.Generic.List[string]]::new()
        Details      = [System.Collections.Generic.List[object]]::new()
        Seconds      = 0.0
        HarnessError = $null
    }
}

foreach ($file in (Get-ChildItem -LiteralPath (Join-Path $PSScriptRoot 'Campaigns') -Filter '*.ps1' | Sort-Object Name)) {
    . $file.FullName
}

# --- Run -------------------------------------------------------------------------------------

$allCampaigns = @('Crash', 'WriterCrash', 'Network', 'Security', 'Soak', 'Fuzz', 'StoreDown', 'TwoWriters', 'Hostile')
$order = @($allCampaigns | Where-Object { $_ -in $Campaign })
$laneB = @()
if (-not $ResultsOnly -and -not $Sequential -and $Mode -eq 'Quick') {
    $laneB = @($order | Where-Object { $_ -in 'Soak', 'StoreDown', 'TwoWriters', 'Hostile' })
    if ($laneB.Count -eq $order.Count) { $laneB = @() }
}
$laneA = @($order | Where-Object { $_ -notin $laneB })
$started = [DateTimeOffset]::UtcNow
$total = [System.Diagnostics.Stopwatch]::StartNew()
Write-Host "SqliteReplica reliability campaign: mode $Mode, seed $Seed, campaigns $($order -join ', ')$(if ($laneB.Count) { " ($($laneB -join ', ') in a second pwsh at the same time)" })"
$results = [System.Collections.Generic.List[object]]::new()
$controls = $null
$second = $null
$secondDir = Join-Path $scratch 'lane-b'
try {
    if ($laneB.Count) {
        $null = New-Item -ItemType Directory -Path $secondDir -Force
        $pwsh = Get-PwshCommand
        $arguments = @($pwsh.PrefixArguments) + @('-NoProfile', '-NonInteractive', '-File', $PSCommandPath, '-Mode', $Mode, '-Seed', $Seed, '-Campaign', ($laneB -join ','), '-ResultsOnly', $secondDir)
        $second = Start-TestProcess -FilePath $pwsh.FilePath -ArgumentList $arguments -LogPath (Join-Path $secondDir 'lane-b.log') -Name 'chaos-lane-b'
    }
    if (-not $ResultsOnly) {
        . (Join-Path $PSScriptRoot 'Controls.ps1')
        $controls = Invoke-HarnessControls
    }
    foreach ($name in $laneA) {
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $result = New-CampaignResult -Name $name -Title $name
        try {
            & "Invoke-$($name)Campaign" -Result $result
        }
        catch {
            $result.HarnessError = "$($_.Exception.Message) at $($_.InvocationInfo.PositionMessage)"
            Write-ChaosLine $name "HARNESS ERROR: $($_.Exception.Message)"
            Write-ChaosLine $name $_.ScriptStackTrace
        }
        finally {
            # Nothing of a campaign may outlive it (a replicator left running would skew the next one).
            Stop-ChaosChildren
            if ($Chaos.S3) { Clear-S3Fault -Proxy $Chaos.S3.Proxy }
        }
        $result.Seconds = [Math]::Round($watch.Elapsed.TotalSeconds, 1)
        $results.Add($result)
        Write-ChaosLine $name ("done in {0:F0} s" -f $result.Seconds)
        if ($ResultsOnly) {
            [System.IO.File]::WriteAllText((Join-Path $ResultsOnly "$name.json"), (ConvertTo-ScrubbedText ($result | ConvertTo-Json -Depth 8)))
        }
    }
    if ($second) {
        Write-Host "Waiting for the second lane ($($laneB -join ', '))..."
        $exited = $second.Process.WaitForExit(1800 * 1000)
        if (-not $exited) { $null = $second | Stop-TestProcess -Signal KILL -TimeoutSeconds 10 }
        foreach ($line in ((Read-ChaosText -Path $second.LogPath) -split "`r?`n" | Where-Object { $_ -match '^\[\d\d:\d\d:\d\d\]' })) { Write-Host "  (lane b) $line" }
        foreach ($name in $laneB) {
            $file = Join-Path $secondDir "$name.json"
            if (Test-Path -LiteralPath $file) {
                $results.Add(([System.IO.File]::ReadAllText($file) | ConvertFrom-Json))
            }
            else {
                $missing = New-CampaignResult -Name $name -Title $name
                $missing.HarnessError = "the second lane ended (exit $(if ($exited) { $second.Process.ExitCode } else { 'killed after 30 min' })) without a result: $(Get-LogTail -Path $second.LogPath -Lines 8)"
                $results.Add($missing)
            }
        }
    }
}
finally {
    if ($Chaos.S3) { Stop-S3Fixture -All }
    Stop-TestProcess -All -Signal KILL -TimeoutSeconds 5
    Remove-TmpfsMount -All -ErrorAction SilentlyContinue
    $env:TMPDIR = $savedTmp
    foreach ($name in $savedCredentials.Keys) { [Environment]::SetEnvironmentVariable($name, $savedCredentials[$name]) }
}
if ($ResultsOnly) {
    # The second lane: its results are files; the first lane writes the report.
    exit 0
}
$display = @('Crash', 'WriterCrash', 'Network', 'TwoWriters', 'StoreDown', 'Hostile', 'Security', 'Soak', 'Fuzz')
$results = @(@($controls | Where-Object { $_ }) + @(foreach ($name in $display) { $results | Where-Object Name -eq $name }))

# --- Results -------------------------------------------------------------------------------

foreach ($r in $results) {
    foreach ($f in $r.Figures) { if ($f.Value -is [string]) { $f.Value = ConvertTo-ScrubbedText $f.Value } }
}
$missed = @($results | ForEach-Object { $_.Figures } | Where-Object { $_.Met -eq $false })
$harnessErrors = @($results | Where-Object { $_.HarnessError })
$memoryKb = 0
foreach ($line in [System.IO.File]::ReadAllLines('/proc/meminfo')) {
    if ($line -match '^MemTotal:\s+(\d+)') { $memoryKb = [long]$Matches[1] }
}
$summary = [ordered]@{
    Date          = $started.ToString('yyyy-MM-dd HH:mm:ss') + ' UTC'
    Mode          = $Mode
    Seed          = $Seed
    Processors    = [Environment]::ProcessorCount
    MemoryGiB     = [Math]::Round($memoryKb / 1MB, 1)
    Root          = $isRoot
    Module        = (Import-PowerShellDataFile -LiteralPath $env:SQLITEREPLICA_MODULE).ModuleVersion
    Seconds       = [Math]::Round($total.Elapsed.TotalSeconds, 0)
    GoalsMissed   = $missed.Count
    HarnessErrors = $harnessErrors.Count
    Findings      = @($results | ForEach-Object { $_.Findings }).Count
    Campaigns     = @($results | ForEach-Object { $_.Name })
    Lanes         = if ($laneB.Count) { "$($laneB -join ', ') ran in a second pwsh at the same time as the others" } else { '' }
}

$null = New-Item -ItemType Directory -Path $OutputDirectory -Force
foreach ($r in $results) {
    $json = $r | ConvertTo-Json -Depth 8
    [System.IO.File]::WriteAllText((Join-Path $OutputDirectory ("{0}.json" -f $r.Name.ToLowerInvariant())), (ConvertTo-ScrubbedText $json))
}
[System.IO.File]::WriteAllText((Join-Path $OutputDirectory 'summary.json'), (ConvertTo-ScrubbedText ($summary | ConvertTo-Json -Depth 4)))

. (Join-Path $PSScriptRoot 'Report.ps1')
$report = Format-ChaosReport -Summary $summary -Results $results
$null = New-Item -ItemType Directory -Path ([System.IO.Path]::GetDirectoryName($ReportPath)) -Force
[System.IO.File]::WriteAllText($ReportPath, (ConvertTo-ScrubbedText $report))

if (-not $KeepScratch) {
    Remove-Item -LiteralPath $scratch -Recurse -Force -ErrorAction SilentlyContinue
}
else {
    Write-Host "Scratch kept: $scratch"
}

Write-Host ''
foreach ($r in $results) {
    $bad = @($r.Figures | Where-Object { $_.Met -eq $false }).Count
    $state = if ($r.HarnessError) { 'HARNESS ERROR' } elseif ($bad -gt 0) { "$bad goal(s) missed" } else { 'goals met' }
    Write-Host ('{0,-12} {1,6:F0} s  {2}; {3} finding(s)' -f $r.Name, $r.Seconds, $state, $r.Findings.Count)
}
Write-Host "Report: $(ConvertTo-ScrubbedText $ReportPath); raw results: $(ConvertTo-ScrubbedText $OutputDirectory)"
Write-Host ('{0} goal(s) missed, {1} harness error(s), {2} finding(s); mode {3}, seed {4}, {5:F0} s' -f $missed.Count, $harnessErrors.Count, $summary.Findings, $Mode, $Seed, $total.Elapsed.TotalSeconds)
if ($missed.Count -gt 0 -or $harnessErrors.Count -gt 0) { exit 1 }
exit 0
